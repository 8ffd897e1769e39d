package results

import (
	"fmt"
	"math"
	"time"
)

// The model of a soak run (issue 15, make soak): resources sampled over a
// long run, each series judged by the slope of its least-squares line after
// the warm-up. Only the model and its arithmetic live here; the sampler
// (harness/scenario) fills it and the report renders it.

// SoakSeries is one quantity sampled over the run: service RSS, goroutines,
// Redis used memory, a table's size, ledger rows, the backlog, a latency
// percentile per minute.
type SoakSeries struct {
	Name string `json:"name"` // "service_rss_bytes", "goroutines", ...
	Unit string `json:"unit"` // "bytes", "count", "ms"
	// Flat says whether the pass criterion demands the series be flat
	// after the warm-up (RSS, goroutines, Redis memory, ledger rows); the
	// others are recorded and plotted only.
	Flat    bool     `json:"flat"`
	Samples []Sample `json:"samples"`
	// Trend is the least-squares line over the samples after the warm-up
	// (nil until Judge).
	Trend *Trend `json:"trend,omitempty"`
}

// Sample is one reading, At seconds after the start of the run.
type Sample struct {
	At    float64 `json:"at"`
	Value float64 `json:"value"`
}

// Trend is a series' least-squares line after the warm-up, and its verdict.
type Trend struct {
	From      float64 `json:"from"`       // seconds: the end of the warm-up
	Points    int     `json:"points"`     // samples the line is fitted to
	Slope     float64 `json:"slope"`      // unit per hour
	Mean      float64 `json:"mean"`       // of the fitted samples
	Drift     float64 `json:"drift"`      // |slope| * fitted span / mean: the relative change the line shows
	MaxDrift  float64 `json:"max_drift"`  // the criterion's bound on Drift
	Flat      bool    `json:"flat"`       // Drift <= MaxDrift
	NotJudged string  `json:"not_judged"` // why no line could be fitted ("" when judged)
}

// FitLine returns the least-squares line v = a + b*t of the samples at or
// after from (b per second), with the number of points used; ok is false
// with fewer than 3 points or no spread in time.
func FitLine(samples []Sample, from float64) (a, b float64, n int, ok bool) {
	var st, sv, stt, stv float64
	for _, s := range samples {
		if s.At < from || math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		n++
		st += s.At
		sv += s.Value
		stt += s.At * s.At
		stv += s.At * s.Value
	}
	if n < 3 {
		return 0, 0, n, false
	}
	fn := float64(n)
	den := fn*stt - st*st
	if den <= 0 {
		return 0, 0, n, false
	}
	b = (fn*stv - st*sv) / den
	a = (sv - b*st) / fn
	return a, b, n, true
}

// Judge fits the line after warmUp and says whether the series is flat:
// the change the line shows over the fitted span is at most maxDrift of
// the series' mean (0.1: less than 10 % over the run after warm-up). A
// series that cannot be fitted is not judged, and so not flat.
func (s *SoakSeries) Judge(warmUp time.Duration, maxDrift float64) {
	from := warmUp.Seconds()
	t := &Trend{From: from, MaxDrift: maxDrift}
	s.Trend = t
	_, b, n, ok := FitLine(s.Samples, from)
	t.Points = n
	if !ok {
		t.NotJudged = fmt.Sprintf("%d samples after the warm-up of %s: need at least 3", n, warmUp)
		return
	}
	first, last := math.Inf(1), math.Inf(-1)
	var sum float64
	for _, p := range s.Samples {
		if p.At >= from && !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
			first, last = math.Min(first, p.At), math.Max(last, p.At)
			sum += p.Value
		}
	}
	t.Slope = b * 3600
	t.Mean = sum / float64(n)
	change := math.Abs(b) * (last - first)
	switch {
	case t.Mean > 0:
		t.Drift = change / t.Mean
	case change == 0:
		t.Drift = 0
	default:
		t.Drift = math.Inf(1)
	}
	t.Flat = t.Drift <= maxDrift
}

// Names of the soak series (SoakSeries.Name), as the sampler fills them.
const (
	SoakRSS          = "service_rss_bytes"       // process_resident_memory_bytes, summed over the services
	SoakGoroutines   = "goroutines"              // go_goroutines, summed over the services
	SoakRedisMemory  = "redis_used_memory_bytes" // INFO memory used_memory
	SoakLedgerRows   = "ledger_rows"             // count(*) of applied_entries
	SoakBacklog      = "backlog"                 // /stats queue_depth + pending
	SoakHTTPP50      = "http_p50_ms"             // per minute, every completion
	SoakHTTPP99      = "http_p99_ms"             // per minute, every completion
	SoakHTTPP99Quiet = "http_p99_quiet_ms"       // per minute, minutes without a fault
	// PostgreSQL: pg_total_relation_size and pg_indexes_size of the events,
	// the ledger (applied_entries) and the audit tables (dropped + failed).
	SoakEventsBytes      = "pg_events_bytes"
	SoakEventsIndexBytes = "pg_events_index_bytes"
	SoakLedgerBytes      = "pg_ledger_bytes"
	SoakLedgerIndexBytes = "pg_ledger_index_bytes"
	SoakAuditBytes       = "pg_audit_bytes"
	SoakAuditIndexBytes  = "pg_audit_index_bytes"
)

// SoakSamples are what the sampler of a run collected: every SoakSeries
// (each reading that failed is left out and counted).
type SoakSamples struct {
	Every  float64      `json:"every_seconds"`
	Taken  int          `json:"taken"`  // sampling rounds
	Failed int          `json:"failed"` // readings that failed (each counted once)
	Errors []string     `json:"errors,omitempty"`
	Series []SoakSeries `json:"series"`
}

// Soak is the record of `make soak` (results/soak.json): the run, its
// samples and the verdict.
type Soak struct {
	Header   Header   `json:"header"`
	Scenario Scenario `json:"scenario"`
	// WarmUp is left out of every line (seconds from the start).
	WarmUp float64 `json:"warm_up_seconds"`
	// MaxDrift bounds the change the line of a resource shows after the
	// warm-up, relative to its mean; LatencyMaxDrift that of the p99 of
	// the minutes without a fault.
	MaxDrift        float64 `json:"max_drift"`
	LatencyMaxDrift float64 `json:"latency_max_drift"`
	// FlatnessJudged: the flatness of the series decides (the full run).
	// A smoke run is shorter than the full run's warm-up and has a fault
	// every 20-40 s: its lines are fitted and recorded (Unjudged),
	// and it passes on the run's validity and on every series having
	// samples.
	FlatnessJudged bool `json:"flatness_judged"`
	// Pass: the run valid, every judged series sampled and (when
	// FlatnessJudged) flat.
	Pass    bool     `json:"pass"`
	Reasons []string `json:"reasons,omitempty"` // why not
	// Unjudged are the drifts a smoke run showed, recorded only.
	Unjudged []string `json:"unjudged,omitempty"`
}

// SoakSeriesOf returns the series of s's samples (nil when the run was not
// sampled).
func (s *Soak) SoakSeriesOf() []SoakSeries {
	if s.Scenario.Soak == nil {
		return nil
	}
	return s.Scenario.Soak.Series
}

// Judge fits every series after the warm-up and gives the verdict: the run
// valid (the checker, the faults, the effects) and every series marked Flat
// sampled and (FlatnessJudged) flat, the latency series against
// LatencyMaxDrift and the others against MaxDrift.
func (s *Soak) Judge() {
	s.Reasons, s.Unjudged = nil, nil
	if !s.Scenario.Valid {
		s.Reasons = append(s.Reasons, "the run is not valid: "+joinShort(s.Scenario.AllViolations()))
	}
	series := s.SoakSeriesOf()
	if len(series) == 0 {
		s.Reasons = append(s.Reasons, "no samples")
	}
	warm := time.Duration(s.WarmUp * float64(time.Second))
	for i := range series {
		sr := &series[i]
		bound := s.MaxDrift
		if sr.Unit == "ms" {
			bound = s.LatencyMaxDrift
		}
		sr.Judge(warm, bound)
		if !sr.Flat {
			continue
		}
		var why string
		switch t := sr.Trend; {
		case len(sr.Samples) == 0 && (s.FlatnessJudged || sr.Unit != "ms"):
			// A resource never read is a broken sampler; a smoke run
			// may have no minute free of faults.
			s.Reasons = append(s.Reasons, sr.Name+": no samples")
			continue
		case t.NotJudged != "":
			why = fmt.Sprintf("%s not judged: %s", sr.Name, t.NotJudged)
		case !t.Flat:
			why = fmt.Sprintf("%s drifts: slope %.4g %s/h, %.1f%% of its mean over the run after warm-up (bound %.0f%%)",
				sr.Name, t.Slope, sr.Unit, 100*t.Drift, 100*t.MaxDrift)
		default:
			continue
		}
		if s.FlatnessJudged {
			s.Reasons = append(s.Reasons, why)
		} else {
			s.Unjudged = append(s.Unjudged, why)
		}
	}
	s.Pass = len(s.Reasons) == 0
}

// joinShort joins at most 3 of vs.
func joinShort(vs []string) string {
	out := ""
	for i, v := range vs {
		if i == 3 {
			return out + fmt.Sprintf("; and %d more", len(vs)-3)
		}
		if i > 0 {
			out += "; "
		}
		out += v
	}
	return out
}
