package nemesis_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/nemesis"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPlanIsSeededAndBounded(t *testing.T) {
	t.Parallel()
	specs := []nemesis.Spec{
		{Fault: nemesis.Kill, Target: "service", Count: 10, Every: 2 * time.Second, For: 100 * time.Millisecond},
		{Fault: nemesis.Cut, Target: "redis", Count: 3, Every: 5 * time.Second, For: 5 * time.Second},
	}
	a := nemesis.Plan(specs, 3, 7)
	b := nemesis.Plan(specs, 3, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different plans")
	}
	if c := nemesis.Plan(specs, 3, 8); reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same plan")
	}
	if len(a) != 13 {
		t.Fatalf("%d actions, want 13", len(a))
	}
	nodes := map[string]int{}
	var last time.Duration
	for _, x := range a {
		if x.At < last {
			t.Fatal("plan not sorted by time")
		}
		last = x.At
		nodes[x.Node]++
		switch x.Fault {
		case nemesis.Kill:
			if x.Hold < 100*time.Millisecond || x.Hold >= 200*time.Millisecond {
				t.Errorf("kill held %s, want in [100ms, 200ms)", x.Hold)
			}
		case nemesis.Cut:
			if x.Hold < 5*time.Second || x.Hold >= 10*time.Second {
				t.Errorf("cut held %s, want in [5s, 10s)", x.Hold)
			}
		}
	}
	if nodes["redis"] != 3 || nodes["service-0"]+nodes["service-1"]+nodes["service-2"] != 10 {
		t.Fatalf("targets: %v", nodes)
	}
	// Faults on one node never overlap: each timeline is sequential.
	var end time.Duration
	for _, x := range a {
		if x.Node != "redis" {
			continue
		}
		if x.At < end {
			t.Fatalf("redis faults overlap at %s", x.At)
		}
		end = x.At + x.Hold
	}
	if nemesis.End(a) < end {
		t.Fatal("End before the last heal")
	}
}

func TestPlanFramedFaultsShareTheTargetsTimeline(t *testing.T) {
	t.Parallel()
	frame := &nemesis.Frame{Fault: nemesis.Pause, Target: "postgres", Lead: time.Second}
	specs := []nemesis.Spec{
		{Fault: nemesis.Kill, Target: "redis", Count: 2, Every: time.Second, For: 500 * time.Millisecond},
		{Fault: nemesis.Kill, Target: "redis", Count: 2, Every: time.Second, For: 500 * time.Millisecond, During: frame},
	}
	plan := nemesis.Plan(specs, 1, 3)
	if len(plan) != 4 {
		t.Fatalf("%d actions, want 4", len(plan))
	}
	// Lines on one target run one after the other: plain kills first, then
	// the framed ones, none overlapping (a framed kill is injected Lead
	// after its At).
	var end time.Duration
	for i, a := range plan {
		framed := a.During != nil
		if framed != (i >= 2) {
			t.Fatalf("action %d framed=%v: lines on one target out of order", i, framed)
		}
		if a.At < end {
			t.Fatalf("action %d at %s overlaps the previous one (ends %s)", i, a.At, end)
		}
		end = a.At + a.Hold
		if framed {
			end += frame.Lead
		}
	}
	if got := nemesis.End(plan); got != end {
		t.Fatalf("End = %s, want %s (the last heal, lead included)", got, end)
	}
}

// stepEnv records the fault steps the nemesis takes, in order.
type stepEnv struct {
	env.Env // only the fault methods below are called
	mu      sync.Mutex
	steps   []string
}

func (e *stepEnv) add(s string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.steps = append(e.steps, s)
	return nil
}
func (e *stepEnv) Kill(_ context.Context, n string) error    { return e.add("kill " + n) }
func (e *stepEnv) Restart(_ context.Context, n string) error { return e.add("restart " + n) }
func (e *stepEnv) Pause(_ context.Context, n string) error   { return e.add("pause " + n) }
func (e *stepEnv) Resume(_ context.Context, n string) error  { return e.add("resume " + n) }

func TestFramedFaultIsInjectedInsideItsFrame(t *testing.T) {
	t.Parallel()
	e := &stepEnv{}
	h, err := history.NewRecorder("")
	if err != nil {
		t.Fatal(err)
	}
	n := &nemesis.Nemesis{Env: e, History: h}
	plan := []nemesis.Action{{
		Fault: nemesis.Kill, Node: "redis", Hold: 200 * time.Millisecond,
		During: &nemesis.Frame{Fault: nemesis.Pause, Target: "postgres", Lead: 100 * time.Millisecond},
	}}
	start := time.Now()
	faults := n.Run(context.Background(), start, plan)
	want := []string{"pause postgres", "kill redis", "resume postgres", "restart redis"}
	if !reflect.DeepEqual(e.steps, want) {
		t.Fatalf("steps %q, want %q", e.steps, want)
	}
	if len(faults) != 1 {
		t.Fatalf("%d faults recorded, want 1 (the frame is part of it)", len(faults))
	}
	f := faults[0]
	if f.During != "pause postgres" || f.Kind != nemesis.Kill || f.Target != "redis" || f.Error != "" {
		t.Fatalf("fault %+v", f)
	}
	if f.At.Sub(start) < 100*time.Millisecond {
		t.Fatalf("kill injected %s after the frame, before its lead of 100ms", f.At.Sub(start))
	}
	if f.Held < 0.2 {
		t.Fatalf("held %.3fs, want at least the planned 0.2s", f.Held)
	}
	var ops []string
	for _, op := range h.Ops() {
		if op.Type == history.Invoke {
			ops = append(ops, op.F+" "+op.Value)
		}
	}
	wantOps := []string{"pause postgres", "kill redis", "heal-pause postgres", "heal-kill redis"}
	if !reflect.DeepEqual(ops, wantOps) {
		t.Fatalf("history %q, want %q", ops, wantOps)
	}
}

// linkEnv records the link states the nemesis sets.
type linkEnv struct {
	env.Env // only SetLink is called
	mu      sync.Mutex
	steps   []string
}

func (e *linkEnv) SetLink(_ context.Context, dep string, mode env.LinkMode, _ time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.steps = append(e.steps, string(mode)+" "+dep)
	return nil
}

// reply-lost is a link fault: the link to the dependency loses replies,
// then is healed; a schedule with it on a node is refused.
func TestReplyLostSetsTheLinkAndHeals(t *testing.T) {
	t.Parallel()
	if !nemesis.OnLink(nemesis.ReplyLost) {
		t.Fatal("reply-lost is not a link fault")
	}
	if err := nemesis.Validate([]nemesis.Spec{{Fault: nemesis.ReplyLost, Target: "service-0", Count: 1}}, 1); err == nil {
		t.Error("reply-lost on a service node accepted")
	}
	e := &linkEnv{}
	h, err := history.NewRecorder("")
	if err != nil {
		t.Fatal(err)
	}
	n := &nemesis.Nemesis{Env: e, History: h}
	faults := n.Run(context.Background(), time.Now(), []nemesis.Action{{Fault: nemesis.ReplyLost, Node: "redis", Hold: 50 * time.Millisecond}})
	if want := []string{"reply-lost redis", "ok redis"}; !reflect.DeepEqual(e.steps, want) {
		t.Fatalf("steps %q, want %q", e.steps, want)
	}
	if len(faults) != 1 || faults[0].Error != "" {
		t.Fatalf("faults %+v", faults)
	}
}

// disk-full fills a dependency's disk and heals by freeing it; on a
// service node it is refused.
func TestDiskFullFillsAndFrees(t *testing.T) {
	t.Parallel()
	if err := nemesis.Validate([]nemesis.Spec{{Fault: nemesis.DiskFull, Target: "service-0", Count: 1}}, 1); err == nil {
		t.Error("disk-full on a service node accepted")
	}
	e := &diskEnv{}
	h, err := history.NewRecorder("")
	if err != nil {
		t.Fatal(err)
	}
	n := &nemesis.Nemesis{Env: e, History: h}
	faults := n.Run(context.Background(), time.Now(), []nemesis.Action{{Fault: nemesis.DiskFull, Node: "postgres", Hold: 50 * time.Millisecond}})
	if want := []string{"fill postgres", "free postgres"}; !reflect.DeepEqual(e.steps, want) {
		t.Fatalf("steps %q, want %q", e.steps, want)
	}
	if len(faults) != 1 || faults[0].Error != "" {
		t.Fatalf("faults %+v", faults)
	}
}

// diskEnv records the disk steps the nemesis takes.
type diskEnv struct {
	env.Env // only FillDisk and FreeDisk are called
	mu      sync.Mutex
	steps   []string
}

func (e *diskEnv) FillDisk(_ context.Context, dep string) error { return e.step("fill " + dep) }
func (e *diskEnv) FreeDisk(_ context.Context, dep string) error { return e.step("free " + dep) }

func (e *diskEnv) step(s string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.steps = append(e.steps, s)
	return nil
}
