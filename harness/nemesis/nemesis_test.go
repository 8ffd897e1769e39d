package nemesis_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/nemesis"
)

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
