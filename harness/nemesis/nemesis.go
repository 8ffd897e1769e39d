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
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// Fault kinds.
const (
	Kill      = "kill"      // SIGKILL (PostgreSQL: immediate stop), then restart
	Terminate = "terminate" // SIGTERM, then restart
	Pause     = "pause"     // SIGSTOP, then SIGCONT
	Cut       = "cut"       // close and refuse connections to a dependency, then heal
	Blackhole = "blackhole" // connections stay open, nothing passes, then heal
	Slow      = "slow"      // added latency on the link, then heal
	// ReplyLost: each open connection's next reply is discarded and the
	// connection reset after the server carried the command out (client
	// libraries retry a command that took effect), then heal.
	ReplyLost = "reply-lost"
	// DiskFull: the small filesystem a dependency's data is on (the
	// scenario's env redis_disk or postgres_disk) is filled with a ballast
	// file, then healed by deleting it.
	DiskFull = "disk-full"
)

// Kinds are the fault kinds, in the order messages list them.
var Kinds = []string{Kill, Terminate, Pause, Cut, Blackhole, Slow, ReplyLost, DiskFull}

// OnLink reports whether a fault acts on the link from the services to a
// dependency (Cut, Blackhole, Slow, ReplyLost) rather than on a node's
// process.
func OnLink(fault string) bool {
	return fault == Cut || fault == Blackhole || fault == Slow || fault == ReplyLost
}

// AnyService is the target of a Spec that hits a service instance drawn at
// random for each fault.
const AnyService = "service"

// Spec asks for Count faults of one kind on Target, Every apart, each held
// For (intervals drawn in [d, 2d)).
type Spec struct {
	Fault   string
	Target  string // a node, or AnyService for a random service instance each time
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

// Validate checks a schedule for a system of services service instances:
// known fault kinds on nodes that exist (links only to a dependency), a
// latency for Slow, no negative count or duration, and frames that each
// hold on a node of their own (no other spec targets it, and specs on
// different timelines do not share it), so a frame and the faults it frames
// never overlap with other faults. Errors name the field as a scenario file
// spells it ("nemesis[0].during.lead").
func Validate(specs []Spec, services int) error {
	for i, s := range specs {
		field := fmt.Sprintf("nemesis[%d]", i)
		if err := checkFault(field, s.Fault, s.Target, s.Latency, services, true); err != nil {
			return err
		}
		switch {
		case s.Count < 0:
			return fmt.Errorf("%s.count %d: must be >= 0", field, s.Count)
		case s.Every < 0:
			return fmt.Errorf("%s.every %s: must be >= 0", field, s.Every)
		case s.For < 0:
			return fmt.Errorf("%s.for %s: must be >= 0", field, s.For)
		}
		if err := validateFrame(specs, i, services); err != nil {
			return err
		}
	}
	return nil
}

// checkFault checks one fault of a schedule; field names it in errors
// ("nemesis[0]", "nemesis[0].during"). AnyService is a target only when
// anyService is set.
func checkFault(field, fault, target string, latency time.Duration, services int, anyService bool) error {
	switch {
	case !slices.Contains(Kinds, fault):
		return fmt.Errorf("%s.fault %q: must be one of %s", field, fault, strings.Join(Kinds, ", "))
	case target == "":
		return fmt.Errorf("%s.target: missing", field)
	case OnLink(fault) && target != env.Redis && target != env.Postgres:
		return fmt.Errorf("%s: %s applies to the link to %s or %s, not %q", field, fault, env.Redis, env.Postgres, target)
	case fault == DiskFull && target != env.Redis && target != env.Postgres:
		return fmt.Errorf("%s: %s applies to the disk of %s or %s, not %q", field, fault, env.Redis, env.Postgres, target)
	case fault == Slow && latency == 0:
		return fmt.Errorf("%s.latency: required for %s", field, Slow)
	case latency < 0:
		return fmt.Errorf("%s.latency %s: must be >= 0", field, latency)
	case target == AnyService && anyService, target == env.Redis, target == env.Postgres, isServiceNode(target, services):
		return nil
	case target == AnyService:
		return fmt.Errorf("%s.target %q: must name one node (%s, %s or %s)", field, target, serviceNodes(services), env.Redis, env.Postgres)
	}
	return fmt.Errorf("%s.target %q: no such node (%s%s, %s or %s)", field, target, orAny(anyService), serviceNodes(services), env.Redis, env.Postgres)
}

func orAny(anyService bool) string {
	if anyService {
		return AnyService + ", "
	}
	return ""
}

// isServiceNode reports whether node is one of the services instances.
func isServiceNode(node string, services int) bool {
	for i := range max(services, 1) {
		if node == env.ServiceNode(i) {
			return true
		}
	}
	return false
}

// serviceNodes names the service instances for messages.
func serviceNodes(services int) string {
	if services <= 1 {
		return env.ServiceNode(0)
	}
	return env.ServiceNode(0) + " to " + env.ServiceNode(services-1)
}

// validateFrame checks specs[i].During: a fault the nemesis knows, on a
// node of its own (no other spec targets it, so the two never overlap).
func validateFrame(specs []Spec, i, services int) error {
	f := specs[i]
	u := f.During
	if u == nil {
		return nil
	}
	field := fmt.Sprintf("nemesis[%d].during", i)
	if err := checkFault(field, u.Fault, u.Target, u.Latency, services, false); err != nil {
		return err
	}
	if u.Lead <= 0 {
		return fmt.Errorf("%s.lead: must be > 0 (how long the frame holds before the fault)", field)
	}
	for j, g := range specs {
		if g.Target == u.Target || g.Target == AnyService && isServiceNode(u.Target, services) {
			return fmt.Errorf("%s.target %q: nemesis[%d] targets it too, and the two would overlap", field, u.Target, j)
		}
		if j != i && g.During != nil && g.During.Target == u.Target && g.Target != f.Target {
			return fmt.Errorf("%s.target %q: nemesis[%d] frames its faults in it too, on another timeline", field, u.Target, j)
		}
	}
	return nil
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
			if node == AnyService {
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

// ReadyAfterHeal bounds the wait for every service to be ready after a
// heal: a subject that never comes back fails the fault (and the run)
// instead of hanging it.
var ReadyAfterHeal = 2 * time.Minute

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
func (n *Nemesis) Run(ctx context.Context, start time.Time, plan []Action) []results.Fault {
	byNode := map[string][]Action{}
	var order []string
	for _, a := range plan {
		if _, ok := byNode[a.Node]; !ok {
			order = append(order, a.Node)
		}
		byNode[a.Node] = append(byNode[a.Node], a)
	}
	var mu sync.Mutex
	var out []*results.Fault
	var wg, measures sync.WaitGroup
	for _, node := range order {
		wg.Add(1)
		go func(actions []Action) {
			defer wg.Done()
			for _, a := range actions {
				if !waitUntil(ctx, start.Add(a.At)) {
					return
				}
				f, measure := n.apply(ctx, a)
				mu.Lock()
				out = append(out, f)
				mu.Unlock()
				// The backlog's return is measured beside the next fault,
				// not before it: waiting for it would push every later
				// fault on the node off its plan.
				if measure != nil {
					measures.Go(func() {
						d := measure()
						mu.Lock()
						f.ToDrained = d
						mu.Unlock()
					})
				}
			}
		}(byNode[node])
	}
	wg.Wait()
	measures.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	faults := make([]results.Fault, len(out))
	for i, f := range out {
		faults[i] = *f
	}
	return faults
}

// apply injects one fault (inside its framing fault, if any), holds it,
// heals it and waits for the services to be ready. It returns the record
// and, when the backlog is measured, the function that measures its return
// to its level before the fault (seconds after the heal, or -1).
func (n *Nemesis) apply(ctx context.Context, a Action) (*results.Fault, func() float64) {
	f := &results.Fault{Kind: a.Fault, Target: a.Node, At: time.Now()}
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
		return f, nil
	}
	if n.Ready != nil {
		rctx, cancel := context.WithTimeout(ctx, ReadyAfterHeal)
		if rerr := n.Ready(rctx); rerr != nil {
			errs = append(errs, fmt.Errorf("not ready within %s of the heal: %w", ReadyAfterHeal, rerr))
		}
		cancel()
	}
	f.ToReady = time.Since(healedAt).Seconds()
	if err := errors.Join(errs...); err != nil {
		f.Error = err.Error()
	}
	if before < 0 {
		return f, nil
	}
	return f, func() float64 { return n.backToLevel(ctx, before, healedAt) }
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
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		b, err := n.Backlog(bctx)
		cancel()
		if err == nil && b <= level {
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
	case ReplyLost:
		return n.Env.SetLink(ctx, a.Node, env.LinkReplyLost, 0)
	case DiskFull:
		return n.Env.FillDisk(ctx, a.Node)
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
		case Cut, Blackhole, Slow, ReplyLost:
			err = n.Env.SetLink(hctx, a.Node, env.LinkOK, 0)
		case DiskFull:
			err = n.Env.FreeDisk(hctx, a.Node)
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
