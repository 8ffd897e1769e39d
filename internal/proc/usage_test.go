package proc

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// tick is the resolution of /proc's CPU times; tolerances are counted in it.
const tick = clockTick

// TestTreeUsageLiveDescendants: the tree's CPU time is the root's plus each
// live descendant's, while the root's own reading excludes them.
func TestTreeUsageLiveDescendants(t *testing.T) {
	t.Parallel()
	const burnt = 300 * time.Millisecond
	p := startHelper(t, Command{Group: true}, "tree", "1", "2", burnt.String(), "hold", "root")
	leaves := waitLines(t, p.Log(), "burnt", 2, 60*time.Second)

	kids := Children(p.PID())
	scanned := childrenByScan(p.PID())
	slices.Sort(kids)
	slices.Sort(scanned)
	slices.Sort(leaves)
	if !slices.Equal(kids, leaves) || !slices.Equal(scanned, leaves) {
		t.Fatalf("Children %v, by scan %v; the leaves are %v", kids, scanned, leaves)
	}

	own, err := ReadUsage(p.PID())
	if err != nil {
		t.Fatal(err)
	}
	var sum Usage
	for _, pid := range append([]int{p.PID()}, leaves...) {
		u, err := ReadUsage(pid)
		if err != nil {
			t.Fatal(err)
		}
		if pid != p.PID() && u.CPU < burnt-tick {
			t.Errorf("leaf %d: %v CPU, want >= %v", pid, u.CPU, burnt)
		}
		sum = sum.Add(u)
	}
	tree, err := ReadTreeUsage(p.PID())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("root own %v; root + leaves read one by one %v; tree %v (%d procs, peak RSS %d KiB, RSS %d KiB)",
		own.CPU, sum.CPU, tree.CPU, tree.Procs, tree.PeakRSS>>10, tree.RSS>>10)
	if tree.Procs != 3 || own.Procs != 1 {
		t.Errorf("Procs: tree %d, own %d; want 3 and 1", tree.Procs, own.Procs)
	}
	if tree.CPU < 2*burnt-2*tick {
		t.Errorf("tree CPU %v, want >= 2 x %v burnt by the leaves", tree.CPU, burnt)
	}
	if own.CPU >= burnt {
		t.Errorf("root's own CPU %v includes its children's", own.CPU)
	}
	// The leaves block once they have burnt: the readings one by one and
	// the tree's agree to a few ticks.
	if d := tree.CPU - sum.CPU; d < -3*tick || d > 3*tick {
		t.Errorf("tree CPU %v differs from the sum of its processes %v by %v", tree.CPU, sum.CPU, d)
	}
	if tree.PeakRSS <= 0 || tree.RSS <= 0 || tree.RSS < own.RSS || tree.PeakRSS < own.PeakRSS {
		t.Errorf("memory: tree %+v, root %+v", tree, own)
	}
}

// TestTreeUsageReapedDescendants: descendants reaped by their parents (two
// levels deep) stay in the tree's CPU time through cutime, no reading
// while they are reaped counts one twice, and the usage after the root's
// own exit (the kernel's account of the wait) agrees with the last reading.
func TestTreeUsageReapedDescendants(t *testing.T) {
	t.Parallel()
	const burnt = 150 * time.Millisecond
	const leaves = 4 // 2 x 2
	p := startHelper(t, Command{Group: true}, "tree", "2", "2", burnt.String(), "reap", "root")

	// Read the tree as often as possible while the leaves burn and are reaped.
	var readings []time.Duration
	var last Usage
	deadline := time.Now().Add(60 * time.Second)
	for !p.Log().Contains("reaped " + fmt.Sprint(p.PID())) {
		u, err := ReadTreeUsage(p.PID())
		if err != nil {
			t.Fatal(err)
		}
		readings = append(readings, u.CPU)
		if got := p.Usage(); got.CPU < last.CPU || got.PeakRSS < last.PeakRSS {
			t.Fatalf("Process.Usage went down: %+v after %+v", got, last)
		} else {
			last = got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tree did not finish within 60 s: %s", p.Log().Tail(10))
		}
		<-time.After(time.Millisecond) // pace the readings, leave the CPUs to the leaves
	}
	final, err := ReadTreeUsage(p.PID())
	if err != nil {
		t.Fatal(err)
	}
	own, err := ReadUsage(p.PID())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d readings while running; final tree %v (%d procs), root's own %v", len(readings), final.CPU, final.Procs, own.CPU)
	if final.Procs != 1 {
		t.Errorf("%d processes left, want the root alone", final.Procs)
	}
	if final.CPU < leaves*burnt-leaves*tick {
		t.Errorf("tree CPU %v after its descendants were reaped, want >= %d x %v", final.CPU, leaves, burnt)
	}
	// The root's own CPU (its start and its polling, which a busy machine
	// makes dearer) leaves the leaves' burn to the rest of the tree: were
	// the children's counted in it too, the tree would hold them twice.
	if final.CPU-own.CPU < leaves*burnt-leaves*tick {
		t.Errorf("root's own CPU %v includes its children's (tree %v, leaves burnt %d x %v)", own.CPU, final.CPU, leaves, burnt)
	}
	// A process counted both alive and in its reaper's cutime would show as
	// a reading above the final total.
	for i, r := range readings {
		if r > final.CPU+2*tick {
			t.Errorf("reading %d: %v, above the final %v: a descendant counted twice", i, r, final.CPU)
			break
		}
	}

	if err := p.Kill(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := p.Usage()
	t.Logf("after the root's exit: %+v", done)
	if done.CPU < final.CPU || done.CPU > final.CPU+3*tick {
		t.Errorf("usage after exit %v, want the last reading %v (to a few ticks)", done.CPU, final.CPU)
	}
	if done.Procs != 0 || done.RSS != 0 || done.PeakRSS <= 0 {
		t.Errorf("usage after exit %+v: want no live process and a peak RSS", done)
	}
}

func TestReadUsageGone(t *testing.T) {
	t.Parallel()
	p, err := Start(Command{Path: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadUsage(p.PID()); err == nil && !Alive(p.PID()) {
		t.Error("ReadUsage of a reaped pid succeeded")
	}
	if _, err := ReadTreeUsage(p.PID()); err == nil && !Alive(p.PID()) {
		t.Error("ReadTreeUsage of a reaped pid succeeded")
	}
	if u, err := ReadUsage(os.Getpid()); err != nil || u.PeakRSS <= 0 || u.Procs != 1 {
		t.Errorf("ReadUsage(self) = %+v, %v", u, err)
	}
}
