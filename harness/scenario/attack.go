package scenario

import (
	"context"
	"fmt"

	"github.com/chronicleweaver/chronicleweaver/harness/attack"
	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/load"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/service/config"
)

// attackConfig is the attacker of scenario s on target, its seeded data
// under a namespace of its own ("atk-" + the run's, so that the read back
// of the run's namespace never sees it).
func attackConfig(s *Scenario, o Options, target, runID string) attack.Config {
	pageBytes := config.Defaults().EventsPageBytes
	if c, err := config.FromEnv(func(k string) string { return s.Env.Settings[k] }); err == nil {
		pageBytes = c.EventsPageBytes
	}
	return attack.Config{Target: target, Token: o.Token, Namespace: "atk-" + runID, Rate: s.Attack.Rate,
		Holders: s.Attack.Holders, PageBytes: pageBytes, Timeout: s.Load.Timeout.D()}
}

// seedAttack stores the attacker's valid data and waits for the queue to
// drain, so that the run's stats start after it.
func seedAttack(ctx context.Context, s *Scenario, o Options, tr *tracker, cl *client.Client, target, runID string) error {
	tr.enter(PhaseStart, "seeding the attacker's data: %d topics, %d events of 30,000 '<'", s.Attack.SeedTopics, s.Attack.SeedPageEvents)
	if err := attack.Seed(ctx, attackConfig(s, o, target, runID), s.Attack.SeedTopics, s.Attack.SeedPageEvents); err != nil {
		return fmt.Errorf("scenario: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, s.DrainTimeout.D())
	defer cancel()
	if _, _, err := cl.WaitDrained(dctx); err != nil {
		return fmt.Errorf("scenario: the attacker's seed did not drain: %w", err)
	}
	return nil
}

// runAttack runs the load in alternating windows of load.duration, in the
// same run and namespace: alone (a baseline window), then with the
// attacker beside it (an attack window), attack.windows times. Every
// window goes to the history and the checker; the acknowledged events/s
// of the baseline windows against those of the attack windows give the
// throughput ratio. Alternating short windows, rather than one long phase
// of each, keeps a machine shared with other work from weighing on one
// side only.
func runAttack(ctx context.Context, s *Scenario, o Options, tr *tracker, e env.Env, hist *history.Recorder, runID string, res *results.Scenario) error {
	src, err := gen.New(sourceConfig(s, runID))
	if err != nil {
		return fmt.Errorf("scenario: events: %w", err)
	}
	m := model(s)
	window := func(name string) (load.Summary, error) {
		sum, err := load.Run(ctx, o.loadConfig(e, load.Config{
			Targets: e.Targets(), Token: o.Token, Model: m, Source: src, History: hist,
			Progress: progress(tr, name, m, 0), IdempotencyHeader: o.idempotencyHeader(s),
		}))
		if err != nil {
			return sum, fmt.Errorf("scenario: load (%s window): %w", name, err)
		}
		return sum, nil
	}
	ac := attackConfig(s, o, e.Targets()[0], runID)
	n := s.Attack.windows()
	var a results.Attack
	var base, under phaseTotal
	for i := range n {
		tr.enter(PhaseLoad, "baseline window %d of %d: %s, no attacker", i+1, n, loadWhat(m))
		sum, err := window(PhaseLoad)
		if err != nil {
			return err
		}
		base.add(sum)
		tr.enter(PhaseAttack, "attack window %d of %d: the same load with a hostile client (%.0f req/s, %d kinds in turn, %d held connections)",
			i+1, n, ac.Rate, len(attack.Kinds(ac)), 2*ac.Holders)
		actx, stop := context.WithCancel(ctx)
		done := make(chan results.Attack, 1)
		go func() { done <- attack.Run(actx, ac) }()
		sum, err = window(PhaseAttack)
		stop()
		a.Merge(<-done)
		if err != nil {
			return err
		}
		under.add(sum)
	}
	a.Windows = n
	a.BaselineEventsPerSec, a.AttackEventsPerSec = base.perSec(), under.perSec()
	if a.BaselineEventsPerSec > 0 {
		a.ThroughputRatio = a.AttackEventsPerSec / a.BaselineEventsPerSec
	}
	a.MinThroughputRatio, a.MaxRSSMiB = s.Attack.MinThroughputRatio, s.Attack.MaxRSSMiB
	res.Attack = &a
	for _, k := range a.Kinds {
		o.logf("%s: attack %q: sent %d, answers %v (want %s), unwanted %d, over bound %d, largest answer %d bytes, amplification <= %.2f",
			s.Name, k.Name, k.Sent, k.Classes, k.Want, k.Unwanted, k.OverBound, k.MaxResponse, k.MaxRatio)
	}
	o.logf("%s: throughput %.0f events/s without the attacker, %.0f with it (%d windows of each): ratio %.2f (bound %.2f); %d connections held",
		s.Name, a.BaselineEventsPerSec, a.AttackEventsPerSec, n, a.ThroughputRatio, a.MinThroughputRatio, a.Held)
	return nil
}

// phaseTotal adds up the windows of one side.
type phaseTotal struct {
	events  int64
	seconds float64
}

func (p *phaseTotal) add(sum load.Summary) {
	p.events += sum.EventsAcked
	p.seconds += sum.End.Sub(sum.Start).Seconds()
}

func (p phaseTotal) perSec() float64 {
	if p.seconds <= 0 {
		return 0
	}
	return float64(p.events) / p.seconds
}

// AttackAnswerViolations are the answers of a run's attack that were not
// as they must be (a status the service must not give, an answer past its
// size bound): the hostile scenario's checks of the service, which a
// planted bug that loosens a guard must fail (harness/verify counts them
// as catches, beside the checker's verdict). The other attack violations
// (never sent, throughput, memory) judge the run, not a guard.
func AttackAnswerViolations(res results.Scenario) []string {
	if res.Attack == nil {
		return nil
	}
	var v []string
	for _, k := range res.Attack.Kinds {
		if k.Unwanted > 0 {
			v = append(v, fmt.Sprintf("attack %q: %d of %d answers not %s (%v), e.g. %s", k.Name, k.Unwanted, k.Sent, k.Want, k.Classes, k.Example))
		}
		if k.OverBound > 0 {
			v = append(v, fmt.Sprintf("attack %q: %d answers over their bound (largest %d bytes, %.1fx its request)", k.Name, k.OverBound, k.MaxResponse, k.MaxRatio))
		}
	}
	return v
}

// attackViolations: every kind of attack was sent and answered, each
// answer as it must be and within its bound; every held connection was
// opened; the load kept its throughput and the service its memory.
func attackViolations(s *Scenario, res *results.Scenario) []string {
	a := res.Attack
	var v []string
	for _, k := range a.Kinds {
		answered := k.Sent - k.Classes["error"]
		switch {
		case k.Sent == 0:
			v = append(v, fmt.Sprintf("attack %q: never sent", k.Name))
		case answered-k.Unwanted <= 0:
			v = append(v, fmt.Sprintf("attack %q: %d sent, none answered %s (%v)", k.Name, k.Sent, k.Want, k.Classes))
		}
	}
	v = append(v, AttackAnswerViolations(*res)...)
	if want := 2 * s.Attack.Holders * max(a.Windows, 1); a.Held != want {
		v = append(v, fmt.Sprintf("attack: %d of %d held connections opened", a.Held, want))
	}
	if a.ThroughputRatio < a.MinThroughputRatio {
		v = append(v, fmt.Sprintf("attack: the load acknowledged %.0f events/s with the attacker, %.2f of its %.0f without (bound %.2f)",
			a.AttackEventsPerSec, a.ThroughputRatio, a.BaselineEventsPerSec, a.MinThroughputRatio))
	}
	switch p := res.Perf; {
	case p == nil || p.UsageNotMeasured != "":
		res.Notes = append(res.Notes, "attack: the service's peak RSS was not measured")
	default:
		a.PeakRSSMiB = p.PeakRSSMiB
		if a.PeakRSSMiB > a.MaxRSSMiB {
			v = append(v, fmt.Sprintf("attack: service peak RSS %.1f MiB, over the bound of %.0f MiB", a.PeakRSSMiB, a.MaxRSSMiB))
		}
	}
	return v
}
