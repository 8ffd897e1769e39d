package scenario

import (
	"slices"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/load"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// TestJudgeStep: a step passes on the bound from the scheduled send; a
// failed step is generator-limited only when every failing criterion is
// the generator's (late sends, too few sends) and the target, measured
// from the actual send, held the bound with no error and no backlog.
func TestJudgeStep(t *testing.T) {
	t.Parallel()
	ok := stepMeasures{Bound: 10 * time.Millisecond, Rate: 1000, Duration: 5 * time.Second,
		P99: 4, P99FromSend: 3, Achieved: 1000, Sent: 5000, BacklogOK: true, SendLagP99MS: 1}
	cases := []struct {
		name        string
		mut         func(*stepMeasures)
		pass, genLt bool
	}{
		{"held", func(*stepMeasures) {}, true, false},
		{"late generator, target within the bound", func(m *stepMeasures) { m.P99, m.SendLagP99MS = 43, 40 }, false, true},
		{"target over the bound from the send", func(m *stepMeasures) { m.P99, m.P99FromSend, m.SendLagP99MS = 43, 12, 30 }, false, false},
		{"late generator but errors", func(m *stepMeasures) { m.P99, m.SendLagP99MS, m.ErrorRate = 43, 40, 0.01 }, false, false},
		{"late generator but a backlog", func(m *stepMeasures) { m.P99, m.SendLagP99MS, m.BacklogOK = 43, 40, false }, false, false},
		{"generator sent too few", func(m *stepMeasures) { m.Sent, m.Achieved = 4000, 800 }, false, true},
		{"target answered too few", func(m *stepMeasures) { m.Achieved = 800 }, false, false},
		{"late and too few, both the generator's", func(m *stepMeasures) { m.P99, m.SendLagP99MS, m.Sent, m.Achieved = 43, 40, 4000, 800 }, false, true},
		{"late generator, but the target answered too few", func(m *stepMeasures) { m.P99, m.SendLagP99MS, m.Achieved = 43, 40, 800 }, false, false},
		{"bound exactly", func(m *stepMeasures) { m.P99 = 10 }, true, false},
	}
	for _, c := range cases {
		m := ok
		c.mut(&m)
		v := judgeStep(m)
		if v.Pass != c.pass || v.GeneratorLimited != c.genLt {
			t.Errorf("%s: pass=%v generator-limited=%v, want %v %v", c.name, v.Pass, v.GeneratorLimited, c.pass, c.genLt)
		}
	}
}

// TestDurationP99 ranks as results.PercentilesOf: the ceil(0.99 n)-th.
func TestDurationP99(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if got := durationP99(ds); got != 99 {
		t.Errorf("p99 of 1..100 ms = %v, want 99", got)
	}
	if got := durationP99(nil); got != 0 {
		t.Errorf("p99 of nothing = %v", got)
	}
}

// TestCeilingSteps: a ceiling steps up by the search's factor from its
// start and stops at the first step that misses, keeping the last pass.
func TestCeilingSteps(t *testing.T) {
	t.Parallel()
	s := &Scenario{Search: SearchSpec{Factor: 2, MaxSteps: 10}}
	var asked []float64
	steps, best, err := ceilingSteps(s, 100, func(rate float64) (results.Step, error) {
		asked = append(asked, rate)
		return results.Step{Rate: rate, Pass: rate <= 400}, nil
	})
	if err != nil || best != 400 || len(steps) != 4 || !slices.Equal(asked, []float64{100, 200, 400, 800}) {
		t.Errorf("asked %v, best %v, %d steps, %v; want 100..800, best 400", asked, best, len(steps), err)
	}
	s.Search.MaxSteps = 2
	steps, best, _ = ceilingSteps(s, 100, func(rate float64) (results.Step, error) { return results.Step{Rate: rate, Pass: true}, nil })
	if best != 200 || len(steps) != 2 || !(results.Ceiling{Steps: steps, BestRate: best}).AtLeast() {
		t.Errorf("every step passing: best %v, %d steps; want 200, 2, at least", best, len(steps))
	}
}

// TestSearchConns: a search's load is capped at searchMaxConns
// connections per target, and a lower cap (the docker backend's) stays.
func TestSearchConns(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want int }{{0, searchMaxConns}, {256, searchMaxConns}, {16, 16}} {
		if got := searchConns(load.Config{MaxConns: c.in}).MaxConns; got != c.want {
			t.Errorf("searchConns(MaxConns %d) = %d, want %d", c.in, got, c.want)
		}
	}
}
