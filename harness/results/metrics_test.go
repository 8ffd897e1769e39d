package results

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPercentilesOf(t *testing.T) {
	t.Parallel()
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(hundred), func(i, j int) { hundred[i], hundred[j] = hundred[j], hundred[i] })

	tests := []struct {
		name string
		in   []float64
		want Percentiles
	}{
		{"empty", nil, Percentiles{}},
		{"one sample", []float64{7.5}, Percentiles{N: 1, P50: 7.5, P90: 7.5, P95: 7.5, P99: 7.5, Max: 7.5}},
		{"four samples", []float64{4, 1, 3, 2}, Percentiles{N: 4, P50: 2, P90: 4, P95: 4, P99: 4, Max: 4}},
		{"1 to 100 shuffled", hundred, Percentiles{N: 100, P50: 50, P90: 90, P95: 95, P99: 99, Max: 100}},
		{"ten samples", []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 1000},
			Percentiles{N: 10, P50: 50, P90: 90, P95: 1000, P99: 1000, Max: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := append([]float64(nil), tt.in...)
			if got := PercentilesOf(tt.in); got != tt.want {
				t.Errorf("PercentilesOf(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
			if !reflect.DeepEqual(before, tt.in) && len(tt.in) > 0 {
				t.Errorf("PercentilesOf modified its input")
			}
		})
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func keys(n int) []history.Key {
	ks := make([]history.Key, n)
	for i := range ks {
		ks[i] = history.Key{Topic: "t", ID: string(rune('a' + i))}
	}
	return ks
}

// handHistory is a fault at 0 ms and five publish requests:
//
//	A  100 ms -> ok   300 ms, 3 keys  (latency 200)
//	B  500 ms -> fail 1200 ms, 2 keys (latency 700)
//	C 1500 ms -> info 2500 ms, 1 key  (latency 1000)
//	D 1600 ms -> ok   1700 ms, 4 keys (latency 100)
//	E 2100 ms -> no completion, 5 keys
func handHistory(t *testing.T) []history.Op {
	t.Helper()
	r, err := history.NewRecorder("")
	if err != nil {
		t.Fatal(err)
	}
	fault := r.InvokeAt(at(0), history.NemesisProcess, "kill", nil, "service-0")
	r.Complete(fault, history.Info, at(50), 0, "", "")
	a := r.InvokeAt(at(100), 0, history.FPublish, keys(3), "")
	b := r.InvokeAt(at(500), 1, history.FPublish, keys(2), "")
	r.Complete(a, history.OK, at(300), 201, "", "")
	r.Complete(b, history.Fail, at(1200), 422, "bad", "")
	c := r.InvokeAt(at(1500), 0, history.FPublish, keys(1), "")
	d := r.InvokeAt(at(1600), 1, history.FPublish, keys(4), "")
	r.Complete(d, history.OK, at(1700), 201, "", "")
	r.InvokeAt(at(2100), 2, history.FPublish, keys(5), "")
	r.Complete(c, history.Info, at(2500), 0, "timeout", "")
	return r.Ops()
}

func TestSeries(t *testing.T) {
	t.Parallel()
	ops := handHistory(t)

	got := Series(ops, time.Second)
	want := []Point{
		{T: 0, Sent: 2, EventsPerSec: 3, P50: 200, P99: 200, Errors: 0, Completed: 1},
		{T: 1, Sent: 2, EventsPerSec: 4, P50: 100, P99: 700, Errors: 1, Completed: 2},
		{T: 2, Sent: 1, EventsPerSec: 0, P50: 1000, P99: 1000, Errors: 1, Completed: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Series(1s) =\n%+v\nwant\n%+v", got, want)
	}

	got = Series(ops, 500*time.Millisecond)
	if len(got) != 6 {
		t.Fatalf("Series(500ms) has %d buckets, want 6: %+v", len(got), got)
	}
	// Per bucket: requests sent, event copies acknowledged, errors, completions.
	wantCounts := [][4]float64{{1, 3, 0, 1}, {1, 0, 0, 0}, {0, 0, 1, 1}, {2, 4, 0, 1}, {1, 0, 0, 0}, {0, 0, 1, 1}}
	for i, p := range got {
		c := [4]float64{p.Sent * 0.5, p.EventsPerSec * 0.5, p.Errors * 0.5, float64(p.Completed)}
		if c != wantCounts[i] || p.T != float64(i)*0.5 {
			t.Errorf("bucket %d = %+v, want T %.1f and counts %v", i, p, float64(i)*0.5, wantCounts[i])
		}
	}

	if got := Series(nil, time.Second); got != nil {
		t.Errorf("Series(nil) = %v, want nil", got)
	}
}

func TestDistributionOf(t *testing.T) {
	t.Parallel()
	if d := DistributionOf(nil); d != nil {
		t.Errorf("DistributionOf(nil) = %+v, want nil", d)
	}
	small := DistributionOf([]float64{3, 1, 2})
	want := []Quantile{{1, 1.0 / 3}, {2, 2.0 / 3}, {3, 1}}
	if !reflect.DeepEqual(small.Points, want) || small.N != 3 || small.P50 != 2 {
		t.Errorf("DistributionOf(3,1,2) = %+v", small)
	}
	big := make([]float64, 10_000)
	for i := range big {
		big[i] = float64(i + 1)
	}
	d := DistributionOf(big)
	if len(d.Points) < distributionBody || len(d.Points) > distributionBody+distributionTail || d.N != len(big) {
		t.Fatalf("DistributionOf(10000 samples): %d points, N %d", len(d.Points), d.N)
	}
	if first, last := d.Points[0], d.Points[len(d.Points)-1]; first.MS != 1 || last != (Quantile{10_000, 1}) {
		t.Errorf("first %+v, last %+v; want the smallest and the largest sample", first, last)
	}
	tail := 0
	for i, q := range d.Points {
		if i > 0 && q.MS <= d.Points[i-1].MS {
			t.Fatalf("points not increasing at %d: %+v", i, d.Points[i-1:i+1])
		}
		if q.Share > 0.99 {
			tail++
		}
	}
	if tail < distributionTail-1 {
		t.Errorf("%d points in the slowest 1%%, want about %d", tail, distributionTail)
	}
}

// TestPerfOf measures handHistory whole and from 1.5 s on.
func TestPerfOf(t *testing.T) {
	t.Parallel()
	ops := handHistory(t)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

	// A, B, C and D completed (last at 2.5 s), E never did; A and D are
	// ok (3 + 4 copies); B failed, C unknown, E unanswered; A, B and D
	// have an HTTP status (latencies 200, 700, 100 ms).
	p := PerfOf(ops, t0)
	want := Perf{Seconds: 2.4, Requests: 4, EventsAcked: 7, ErrorRate: 0.6,
		HTTP: Percentiles{N: 3, P50: 200, P90: 700, P95: 700, P99: 700, Max: 700}}
	if p.Requests != want.Requests || p.EventsAcked != want.EventsAcked || !near(p.Seconds, want.Seconds) ||
		!near(p.ErrorRate, want.ErrorRate) || p.HTTP != want.HTTP ||
		!near(p.RequestsPerSec, 4/2.4) || !near(p.EventsPerSec, 7/2.4) {
		t.Errorf("PerfOf(all) = %+v, want %+v and rates 4/2.4, 7/2.4", p, want)
	}

	// From 1.5 s: C (unknown), D (ok, 4 copies), E (unanswered).
	p = PerfOf(ops, at(1500))
	if p.Requests != 2 || p.EventsAcked != 4 || !near(p.Seconds, 1) || !near(p.ErrorRate, 2.0/3) ||
		p.HTTP != (Percentiles{N: 1, P50: 100, P90: 100, P95: 100, P99: 100, Max: 100}) {
		t.Errorf("PerfOf(from 1.5 s) = %+v", p)
	}

	if p := PerfOf(nil, t0); p != (Perf{}) {
		t.Errorf("PerfOf(nil) = %+v, want zero", p)
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	ops := handHistory(t)
	// Invoked in [0.5 s, 1.6 s): B and C, with their completions; not the
	// fault, not D (invoked at 1.6 s).
	got := Window(ops, at(500), at(1600))
	var reqs []int64
	for _, op := range got {
		reqs = append(reqs, op.Req)
		if op.F != history.FPublish {
			t.Errorf("Window kept a %s op", op.F)
		}
	}
	b, c := ops[3].Req, ops[6].Req
	if want := []int64{b, b, c, c}; !reflect.DeepEqual(reqs, want) {
		t.Errorf("Window requests %v, want %v", reqs, want)
	}
	if n := len(Window(ops, at(500), time.Time{})); n != 7 { // B, C, D, E and the completions of B, C and D
		t.Errorf("Window without an end kept %d ops, want 7", n)
	}
	if got := FirstInvoke(ops, at(200)); !got.Equal(at(500)) {
		t.Errorf("FirstInvoke(0.2 s) = %v, want 0.5 s", got)
	}
	if got := FirstInvoke(ops, at(3000)); !got.Equal(at(3000)) {
		t.Errorf("FirstInvoke after the last request = %v, want its argument", got)
	}
	if got := Latencies(ops); !reflect.DeepEqual(got, []float64{200, 700, 100}) {
		t.Errorf("Latencies = %v, want [200 700 100]", got)
	}
}

func TestSetCommitSpan(t *testing.T) {
	t.Parallel()
	var p Perf
	p.SetCommitSpan(0, t0, at(1000))
	if p != (Perf{}) {
		t.Errorf("SetCommitSpan without rows recorded %+v", p)
	}
	p.SetCommitSpan(500, at(500), at(2500))
	if p.RowsStored != 500 || p.FirstToLastCommit != 2 || p.RowsPerSec != 250 {
		t.Errorf("SetCommitSpan(500 rows over 2 s) = %+v", p)
	}
	if got := MaxToReady([]Fault{{ToReady: 1.5}, {ToReady: 3.25}, {ToReady: 0.5}}); got != 3.25 {
		t.Errorf("MaxToReady = %v, want 3.25", got)
	}
}
