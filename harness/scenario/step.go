package scenario

import (
	"slices"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/load"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// stepVerdict is what one step of a rate search showed, as judged by
// judgeStep.
type stepVerdict struct {
	// Pass: the latency bound met (from the scheduled send), no errors,
	// the offered rate achieved, and the backlog left under its limit.
	Pass bool
	// GeneratorLimited: not Pass, but only because of the generator:
	// measured from each request's actual send the bound held, with no
	// error and no backlog, while the generator either sent requests late
	// enough to break the bound or sent too few of them.
	GeneratorLimited bool
}

// stepMeasures are the inputs of judgeStep.
type stepMeasures struct {
	Bound        time.Duration // the search's p99 bound
	Rate         float64       // requests/s asked
	Duration     time.Duration // the step's length
	P99          float64       // HTTP p99 from the scheduled send (ms)
	P99FromSend  float64       // HTTP p99 from the actual send (ms)
	Achieved     float64       // requests/s completed in the step
	Sent         int64         // requests the generator sent
	ErrorRate    float64
	BacklogOK    bool // the backlog at the step's end is under its limit (or not measured)
	SendLagP99MS float64
}

// judgeStep decides a step. The target is held to the bound on the
// latency from the scheduled send (no coordinated omission); when that
// fails while the latency from the actual send holds it (the difference
// is the generator's lateness), or the achieved rate falls short because
// the generator sent under 90% of its schedule, the step is labelled
// generator-limited instead of counted as the target's failure.
func judgeStep(m stepMeasures) stepVerdict {
	bound := float64(m.Bound) / float64(time.Millisecond)
	latencyOK := m.P99 <= bound
	rateOK := m.Achieved >= 0.9*m.Rate
	v := stepVerdict{Pass: latencyOK && m.ErrorRate == 0 && m.BacklogOK && rateOK}
	if v.Pass || m.ErrorRate != 0 || !m.BacklogOK || m.P99FromSend > bound {
		return v
	}
	scheduled := m.Rate * m.Duration.Seconds()
	generatorShort := scheduled > 0 && float64(m.Sent) < 0.9*scheduled
	generatorLate := !latencyOK && m.SendLagP99MS > 0
	// Every failing criterion must be one the generator explains.
	v.GeneratorLimited = (latencyOK || generatorLate) && (rateOK || generatorShort)
	return v
}

// generatorMeasures fills a step's generator figures from the load
// summary: send lag percentiles, latency from the actual send, the
// generator's CPU per request sent.
func generatorMeasures(st *results.Step, sum load.Summary) {
	st.SendLagP99 = durationP99(sum.SendLags)
	st.HTTPFromSendP99 = durationP99(sum.FromSend)
	st.GeneratorCPUSeconds = sum.CPU.Seconds()
	if sum.Requests > 0 {
		st.GeneratorCPUPerRequestUS = float64(sum.CPU.Microseconds()) / float64(sum.Requests)
	}
}

// durationP99 is the 99th percentile of ds in milliseconds (0 for none),
// ranked as results.PercentilesOf ranks.
func durationP99(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (99*len(s) + 99) / 100
	return float64(s[max(rank, 1)-1]) / float64(time.Millisecond)
}
