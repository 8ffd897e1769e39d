package results

import (
	"math"
	"slices"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// How the measures of a run are derived from its history. Latencies are in
// milliseconds: a request's is its completion's Latency (the load generator
// stamps it from the scheduled send time, so a harness behind schedule
// counts its delay), and only answered requests (an HTTP status) have one.

// PerfOf measures the publish requests of ops invoked at or after since:
// the span from the first invocation to the last completion, completed
// requests and acknowledged event copies (and their rates over that span),
// the error rate (requests not ok, or never answered, over all requests)
// and the HTTP latency percentiles. The database and resource measures of
// Perf are left zero: the caller reads them where they live.
func PerfOf(ops []history.Op, since time.Time) Perf {
	var p Perf
	var lat []float64
	var first, last time.Time
	var bad, unanswered int64
	for _, pr := range history.Pairs(ops, history.FPublish) {
		if pr.Invoke.Time.Before(since) {
			continue
		}
		if first.IsZero() || pr.Invoke.Time.Before(first) {
			first = pr.Invoke.Time
		}
		if pr.Completion == nil {
			unanswered++
			continue
		}
		c := pr.Completion
		p.Requests++
		if c.Time.After(last) {
			last = c.Time
		}
		if c.Status > 0 {
			lat = append(lat, ms(c.Latency))
		}
		if c.Type == history.OK {
			p.EventsAcked += int64(len(pr.Invoke.Keys))
		} else {
			bad++
		}
	}
	if !first.IsZero() && last.After(first) {
		p.Seconds = last.Sub(first).Seconds()
		p.RequestsPerSec = float64(p.Requests) / p.Seconds
		p.EventsPerSec = float64(p.EventsAcked) / p.Seconds
	}
	if total := p.Requests + unanswered; total > 0 {
		p.ErrorRate = float64(bad+unanswered) / float64(total)
	}
	p.HTTP = PercentilesOf(lat)
	return p
}

// Window keeps the publish ops invoked in [since, until) (a zero until
// does not limit) with their completions.
func Window(ops []history.Op, since, until time.Time) []history.Op {
	in := map[int64]bool{}
	var out []history.Op
	for _, op := range ops {
		if op.F != history.FPublish {
			continue
		}
		if op.Type == history.Invoke {
			if op.Time.Before(since) || (!until.IsZero() && !op.Time.Before(until)) {
				continue
			}
			in[op.Req] = true
		} else if !in[op.Req] {
			continue
		}
		out = append(out, op)
	}
	return out
}

// FirstInvoke is the time of the first publish invoked at or after since
// (since when there is none).
func FirstInvoke(ops []history.Op, since time.Time) time.Time {
	for _, op := range ops {
		if op.Type == history.Invoke && op.F == history.FPublish && !op.Time.Before(since) {
			return op.Time
		}
	}
	return since
}

// Latencies are the latencies (ms) of the answered publish requests of
// ops, in history order: the samples of a distribution plot.
func Latencies(ops []history.Op) []float64 {
	var out []float64
	for _, pr := range history.Pairs(ops, history.FPublish) {
		if pr.Completion != nil && pr.Completion.Status > 0 {
			out = append(out, ms(pr.Completion.Latency))
		}
	}
	return out
}

// SetCommitSpan records in p the database's view of a run: rows distinct
// events stored, the last committed at lastCommit, the first request sent
// at first. Nothing is recorded without rows.
func (p *Perf) SetCommitSpan(rows int64, first, lastCommit time.Time) {
	if rows <= 0 {
		return
	}
	p.RowsStored = rows
	p.FirstToLastCommit = lastCommit.Sub(first).Seconds()
	if p.FirstToLastCommit > 0 {
		p.RowsPerSec = float64(rows) / p.FirstToLastCommit
	}
}

// MaxToReady is the longest recovery (heal to every service ready) of
// faults; 0 without faults.
func MaxToReady(faults []Fault) float64 {
	var m float64
	for _, f := range faults {
		m = max(m, f.ToReady)
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// PercentilesOf returns the exact percentiles of samples (milliseconds) by
// the nearest-rank method: the p-th percentile is the smallest sample with
// at least p% of the samples at or below it. ms is not modified. Without
// samples every field is 0 (and N is 0: no data, not a zero latency).
func PercentilesOf(ms []float64) Percentiles {
	n := len(ms)
	if n == 0 {
		return Percentiles{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	// rank = ceil(p*n/100), computed in integers.
	at := func(p int) float64 {
		rank := (p*n + 99) / 100
		return s[max(rank, 1)-1]
	}
	return Percentiles{N: n, P50: at(50), P90: at(90), P95: at(95), P99: at(99), Max: s[n-1]}
}

// Series buckets the publish requests of a history by time. Bucket i
// covers [i*bucket, (i+1)*bucket) after the earliest op of the history
// (any op, faults included, so series of one run share an origin); T is
// the bucket's start in seconds. Per bucket:
//
//   - Sent: requests invoked, per second;
//   - EventsPerSec: event copies of ok completions, by completion time, per second;
//   - P50, P99: of the latencies of the completions (ok, fail and info)
//     recorded in the bucket; Completed counts them;
//   - Errors: fail and info completions, per second.
//
// Requests without a completion (outcome unknown, no time) count as sent
// only. The last bucket is usually partial, and its rates are per full
// bucket. A bucket of 0 or less means one second.
func Series(ops []history.Op, bucket time.Duration) []Point {
	if bucket <= 0 {
		bucket = time.Second
	}
	if len(ops) == 0 {
		return nil
	}
	t0, tEnd := ops[0].Time, ops[0].Time
	for _, op := range ops[1:] {
		if op.Time.Before(t0) {
			t0 = op.Time
		}
		if op.Time.After(tEnd) {
			tEnd = op.Time
		}
	}
	n := int(tEnd.Sub(t0)/bucket) + 1
	idx := func(t time.Time) int {
		i := int(t.Sub(t0) / bucket)
		return min(max(i, 0), n-1)
	}
	pts := make([]Point, n)
	lat := make([][]float64, n)
	for _, p := range history.Pairs(ops, history.FPublish) {
		pts[idx(p.Invoke.Time)].Sent++
		c := p.Completion
		if c == nil {
			continue
		}
		i := idx(c.Time)
		switch c.Type {
		case history.OK:
			pts[i].EventsPerSec += float64(len(p.Invoke.Keys))
		case history.Fail, history.Info:
			pts[i].Errors++
		}
		l := c.Latency
		if l <= 0 {
			l = c.Time.Sub(p.Invoke.Time)
		}
		lat[i] = append(lat[i], float64(l)/float64(time.Millisecond))
	}
	sec := bucket.Seconds()
	for i := range pts {
		pt := &pts[i]
		pt.T = float64(i) * sec
		pt.Sent /= sec
		pt.EventsPerSec /= sec
		pt.Errors /= sec
		pc := PercentilesOf(lat[i])
		pt.P50, pt.P99, pt.Completed = pc.P50, pc.P99, pc.N
	}
	return pts
}

// Distribution.Points: distributionBody points evenly spaced by rank,
// plus distributionTail evenly spaced over the slowest 1% (the tail a log
// axis shows), so a CDF 800 pixels wide looks as with every sample and the
// JSON stays small.
const (
	distributionBody = 500
	distributionTail = 100
)

// DistributionOf summarises latency samples (ms) for a distribution plot:
// their percentiles and a thinned empirical CDF (every sample up to
// distributionBody+distributionTail samples; the first and last always).
// Non-finite samples are dropped; nil when none is left.
func DistributionOf(ms []float64) *Distribution {
	s := make([]float64, 0, len(ms))
	for _, v := range ms {
		if finite(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	n := len(s)
	d := &Distribution{Percentiles: PercentilesOf(s)}
	var idx []int
	if n <= distributionBody+distributionTail {
		for i := range n {
			idx = append(idx, i)
		}
	} else {
		for k := range distributionBody {
			idx = append(idx, k*(n-1)/(distributionBody-1))
		}
		tail := n * 99 / 100
		for k := range distributionTail {
			idx = append(idx, tail+k*(n-1-tail)/(distributionTail-1))
		}
		slices.Sort(idx)
		idx = slices.Compact(idx)
	}
	for _, i := range idx {
		d.Points = append(d.Points, Quantile{MS: s[i], Share: float64(i+1) / float64(n)})
	}
	return d
}
