package report

import (
	"slices"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

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
