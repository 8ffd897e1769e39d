package scenario

import (
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// Latency per minute: each minute's completions give its p50 and p99; the
// judged p99 leaves out the minutes a fault touched, up to its recovery
// and faultSettle after.
func TestLatencySeries(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var ops []history.Op
	req := int64(0)
	publish := func(at time.Duration, lat time.Duration) {
		req++
		ops = append(ops,
			history.Op{Req: req, Type: history.Invoke, F: history.FPublish, Time: t0.Add(at)},
			history.Op{Req: req, Type: history.OK, F: history.FPublish, Time: t0.Add(at + lat), Latency: lat})
	}
	for m := range 4 {
		for i := range 100 {
			lat := 10 * time.Millisecond
			if m == 2 && i >= 98 {
				lat = 900 * time.Millisecond // the slow tail of the fault's minute
			}
			publish(time.Duration(m)*time.Minute+time.Duration(i)*500*time.Millisecond, lat)
		}
	}
	// A fault at 2m10s held 1 s, ready 2 s later: minute 2 only.
	faults := []results.Fault{{Kind: "kill", Target: "redis", At: t0.Add(2*time.Minute + 10*time.Second), Held: 1, ToReady: 2}}
	got := latencySeries(ops, faults, t0)
	if len(got) != 3 || got[0].Name != results.SoakHTTPP50 || got[2].Name != results.SoakHTTPP99Quiet || !got[2].Flat || got[1].Flat {
		t.Fatalf("series %+v: want p50, p99 (recorded) and the quiet p99 (judged)", got)
	}
	if n := len(got[1].Samples); n != 4 {
		t.Fatalf("p99: %d minutes, want 4", n)
	}
	if s := got[1].Samples[2]; s.At != 150 || s.Value < 100 {
		t.Errorf("p99 of minute 2 = %+v, want at 150 s and the fault's slow tail", s)
	}
	var quietAt []float64
	for _, s := range got[2].Samples {
		quietAt = append(quietAt, s.At)
		if s.Value > 20 {
			t.Errorf("quiet p99 at %v s = %v ms, want about 10", s.At, s.Value)
		}
	}
	if len(quietAt) != 3 || quietAt[2] != 210 {
		t.Errorf("quiet minutes at %v s, want 30, 90 and 210 (minute 2 left out)", quietAt)
	}
}

// Stretch keeps the faults' pace: twice the duration, twice the faults.
func TestStretch(t *testing.T) {
	t.Parallel()
	s, err := Load("soak", false)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, len(s.Nemesis))
	for i, f := range s.Nemesis {
		counts[i] = f.Count
	}
	if err := s.Stretch(2 * s.Load.Duration.D()); err != nil {
		t.Fatal(err)
	}
	for i, f := range s.Nemesis {
		if f.Count != 2*counts[i] {
			t.Errorf("nemesis[%d]: count %d after doubling, want %d", i, f.Count, 2*counts[i])
		}
	}
	if err := s.Stretch(0); err == nil {
		t.Error("Stretch(0): no error")
	}
}
