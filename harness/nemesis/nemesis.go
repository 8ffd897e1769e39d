// Package nemesis injects faults on a seeded, reproducible schedule, each
// one recorded in the history like any other operation (Jepsen's nemesis).
//
// A fault is applied, held for a while, then healed: a killed or terminated
// node is restarted, a paused one resumed, a cut, blackholed or slowed link
// restored. After each heal the nemesis measures how long until every
// service instance answers /ready again.
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/report"
)

// Fault kinds.
const (
	Kill      = "kill"      // SIGKILL (PostgreSQL: immediate stop), then restart
	Terminate = "terminate" // SIGTERM, then restart
	Pause     = "pause"     // SIGSTOP, then SIGCONT
	Cut       = "cut"       // close and refuse connections to a dependency, then heal
	Blackhole = "blackhole" // connections stay open, nothing passes, then heal
	Slow      = "slow"      // added latency on the link, then heal
)

// Spec asks for Count faults of one kind on Target, Every apart, each held
// For (intervals drawn in [d, 2d)).
type Spec struct {
	Fault   string
	Target  string // a node, or "service" for a random service instance each time
	Count   int
	Every   time.Duration
	For     time.Duration
	Latency time.Duration // for Slow
	// During, when set, makes each fault land inside another one: see Frame.
	During *Frame
}

// Frame is a fault that frames another: it is injected Lead before the main
// fault and healed halfway through the main fault's hold, so the main fault
// always meets the state the framing one creates. Killing Redis during a
// pause of PostgreSQL, for one, kills it while the stream holds entries no
// worker could apply yet: the entries only the append-only file keeps.
type Frame struct {
	Fault   string
	Target  string // a node
	Lead    time.Duration
	Latency time.Duration // for Slow
}

// Action is one planned fault.
type Action struct {
	At      time.Duration // since the start of the run (of the framing fault, if any)
	Fault   string
	Node    string
	Hold    time.Duration
	Latency time.Duration
	During  *Frame
}

// lead is how long after At the main fault is injected.
func (a Action) lead() time.Duration {
	if a.During == nil {
		return 0
	}
	return a.During.Lead
}

// Plan turns specs into a schedule, the same for the same seed. Specs with
// the same target share one timeline, one after the other in spec order;
// the others run side by side. The result is sorted by time.
func Plan(specs []Spec, services int, seed int64) []Action {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e656d65736973)) // "nemesis"
	draw := func(d time.Duration) time.Duration {
		if d <= 0 {
			return 0
		}
		return d + time.Duration(rng.Int64N(int64(d)))
	}
	var plan []Action
	timeline := map[string]time.Duration{} // by spec target
	for _, s := range specs {
		t := timeline[s.Target]
		for range s.Count {
			t += draw(s.Every)
			node := s.Target
			if node == "service" {
				node = env.ServiceNode(rng.IntN(max(services, 1)))
			}
			a := Action{At: t, Fault: s.Fault, Node: node, Hold: draw(s.For), Latency: s.Latency, During: s.During}
			plan = append(plan, a)
			t += a.lead() + a.Hold
		}
		timeline[s.Target] = t
	}
	sort.SliceStable(plan, func(i, j int) bool { return plan[i].At < plan[j].At })
	return plan
}

// End is when the last fault of the plan is healed.
func End(plan []Action) time.Duration {
	var end time.Duration
	for _, a := range plan {
		end = max(end, a.At+a.lead()+a.Hold)
	}
	return end
}

// ReadyFunc waits until every service answers /ready.
type ReadyFunc func(ctx context.Context) error

// BacklogFunc reads the queue's backlog (events appended, not yet applied).
type BacklogFunc func(ctx context.Context) (int64, error)

// Nemesis runs a plan against an environment.
type Nemesis struct {
	Env     env.Env
	History *history.Recorder
	Ready   ReadyFunc
	// Backlog, when set, is read before each fault; after the heal the
	// nemesis measures how long the backlog takes to come back to that level.
	Backlog BacklogFunc
}

// Run executes the plan from start; it returns when every fault was applied
// and healed (or ctx ended), with a record of each. Timelines of different
// nodes overlap as planned; faults on the same node never do.
func (n *Nemesis) Run(ctx context.Context, start time.Time, plan []Action) []report.Fault {
	byNode := map[string][]Action{}
	var order []string
	for _, a := range plan {
		if _, ok := byNode[a.Node]; !ok {
			order = append(order, a.Node)
		}
		byNode[a.Node] = append(byNode[a.Node], a)
	}
	var mu sync.Mutex
	var out []report.Fault
	var wg sync.WaitGroup
	for _, node := range order {
		wg.Add(1)
		go func(actions []Action) {
			defer wg.Done()
			for _, a := range actions {
				if !waitUntil(ctx, start.Add(a.At)) {
					return
				}
				f := n.apply(ctx, a)
				mu.Lock()
				out = append(out, f)
				mu.Unlock()
			}
		}(byNode[node])
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// apply injects one fault (inside its framing fault, if any), holds it,
// heals it and measures the recovery.
func (n *Nemesis) apply(ctx context.Context, a Action) report.Fault {
	f := report.Fault{Kind: a.Fault, Target: a.Node, At: time.Now()}
	before := int64(-1)
	if n.Backlog != nil {
		if b, err := n.Backlog(ctx); err == nil {
			before = b
		}
	}
	var errs []error
	var frame *Action
	if u := a.During; u != nil {
		frame = &Action{Fault: u.Fault, Node: u.Target, Latency: u.Latency}
		f.During = u.Fault + " " + u.Target
		errs = append(errs, n.record(ctx, *frame, "", n.inject))
		waitUntil(ctx, time.Now().Add(u.Lead))
		f.At = time.Now()
	}
	errs = append(errs, n.record(ctx, a, "", n.inject))
	if frame != nil {
		waitUntil(ctx, f.At.Add(a.Hold/2))
		errs = append(errs, n.record(ctx, *frame, "heal-", n.heal))
	}
	waitUntil(ctx, f.At.Add(a.Hold))
	healedAt := time.Now()
	herr := n.record(ctx, a, "heal-", n.heal)
	f.Held = healedAt.Sub(f.At).Seconds()
	if herr != nil {
		f.Error = errors.Join(append(errs, herr)...).Error()
		return f
	}
	if n.Ready != nil {
		if rerr := n.Ready(ctx); rerr != nil {
			errs = append(errs, fmt.Errorf("not ready after heal: %w", rerr))
		}
	}
	f.ToReady = time.Since(healedAt).Seconds()
	if err := errors.Join(errs...); err != nil {
		f.Error = err.Error()
	}
	if before >= 0 {
		f.ToDrained = n.backToLevel(ctx, before, healedAt)
	}
	return f
}

// record runs one step of a fault (inject, or heal with prefix "heal-") as
// an op of the history.
func (n *Nemesis) record(ctx context.Context, a Action, prefix string, step func(context.Context, Action) error) error {
	inv := n.History.Invoke(history.NemesisProcess, prefix+a.Fault, nil, a.Node)
	err := step(ctx, a)
	n.complete(inv, err)
	return err
}

// backToLevel polls the backlog until it is at most level (plus the
// backlog a healthy service carries anyway: at least 100 events) and
// returns the seconds since healedAt; -1 when it did not within a minute.
func (n *Nemesis) backToLevel(ctx context.Context, level int64, healedAt time.Time) float64 {
	level = max(level, 100)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if b, err := n.Backlog(ctx); err == nil && b <= level {
			return time.Since(healedAt).Seconds()
		}
		if !waitUntil(ctx, time.Now().Add(50*time.Millisecond)) {
			break
		}
	}
	return -1
}

func (n *Nemesis) complete(inv history.Op, err error) {
	if err != nil {
		n.History.Complete(inv, history.Fail, time.Now(), 0, err.Error(), inv.Value)
		return
	}
	n.History.Complete(inv, history.OK, time.Now(), 0, "", inv.Value)
}

func (n *Nemesis) inject(ctx context.Context, a Action) error {
	switch a.Fault {
	case Kill:
		return n.Env.Kill(ctx, a.Node)
	case Terminate:
		return n.Env.Terminate(ctx, a.Node)
	case Pause:
		return n.Env.Pause(ctx, a.Node)
	case Cut:
		return n.Env.SetLink(ctx, a.Node, env.LinkCut, 0)
	case Blackhole:
		return n.Env.SetLink(ctx, a.Node, env.LinkBlackhole, 0)
	case Slow:
		return n.Env.SetLink(ctx, a.Node, env.LinkSlow, a.Latency)
	}
	return fmt.Errorf("nemesis: unknown fault %q", a.Fault)
}

// heal undoes a fault, retrying for a while: a heal must not be skipped.
func (n *Nemesis) heal(ctx context.Context, a Action) error {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		switch a.Fault {
		case Kill, Terminate:
			err = n.Env.Restart(hctx, a.Node)
		case Pause:
			err = n.Env.Resume(hctx, a.Node)
		case Cut, Blackhole, Slow:
			err = n.Env.SetLink(hctx, a.Node, env.LinkOK, 0)
		default:
			return fmt.Errorf("nemesis: unknown fault %q", a.Fault)
		}
		if err == nil || hctx.Err() != nil {
			return err
		}
		waitUntil(hctx, time.Now().Add(time.Duration(attempt+1)*500*time.Millisecond))
	}
	return err
}

// waitUntil blocks until t or ctx's end; it reports whether t was reached.
func waitUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
