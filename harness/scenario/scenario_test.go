package scenario_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEveryScenarioFileLoads(t *testing.T) {
	t.Parallel()
	names, err := scenario.Names()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no scenario files")
	}
	for _, name := range names {
		for _, smoke := range []bool{false, true} {
			if _, err := scenario.Load(name, smoke); err != nil {
				t.Errorf("%s (smoke %v): %v", name, smoke, err)
			}
		}
	}
}

func TestFramedFaultValidation(t *testing.T) {
	t.Parallel()
	const head = "name: x\nexpect: {unknown: true}\nload: {model: open, rate: 10, duration: 1s}\nnemesis:\n"
	cases := []struct {
		nemesis string
		err     string // "" when valid
	}{
		{"  - {fault: kill, target: redis, every: 1s, during: {fault: pause, target: postgres, lead: 1s}}\n", ""},
		{"  - {fault: kill, target: redis, during: {fault: freeze, target: postgres, lead: 1s}}\n", "nemesis[0].during.fault"},
		{"  - {fault: kill, target: redis, during: {fault: pause, target: service, lead: 1s}}\n", "nemesis[0].during.target"},
		{"  - {fault: kill, target: redis, during: {fault: cut, target: service-0, lead: 1s}}\n", "link to redis or postgres"},
		{"  - {fault: kill, target: redis, during: {fault: slow, target: postgres, lead: 1s}}\n", "nemesis[0].during.latency"},
		{"  - {fault: kill, target: redis, during: {fault: pause, target: postgres}}\n", "nemesis[0].during.lead"},
		{"  - {fault: kill, target: redis, during: {fault: pause, target: postgres, lead: 1s}}\n" +
			"  - {fault: cut, target: postgres}\n", "nemesis[1] targets it too"},
		{"  - {fault: kill, target: service, during: {fault: pause, target: service-0, lead: 1s}}\n", "nemesis[0] targets it too"},
		{"  - {fault: kill, target: redis, during: {fault: pause, target: postgres, lead: 1s}}\n" +
			"  - {fault: kill, target: service-0, during: {fault: pause, target: postgres, lead: 1s}}\n", "another timeline"},
	}
	for _, c := range cases {
		_, err := scenario.Parse([]byte(head+c.nemesis), false)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.nemesis, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one naming %q", c.nemesis, err, c.err)
		}
	}
}

// TestValidationDelegates checks that each part of a scenario is checked by
// the package that owns it, and that the error names the part.
func TestValidationDelegates(t *testing.T) {
	t.Parallel()
	const load = "load: {model: open, rate: 10, duration: 1s}\n"
	cases := []struct {
		doc string
		err string // "" when valid
	}{
		{"name: x\n" + load, ""},
		{"name: x\nkind: soak\n" + load, `kind "soak"`},
		{"name: x\nload: {model: poisson, rate: 10, duration: 1s}\n", "load: Model.Kind"},
		{"name: x\nload: {model: open, duration: 1s}\n", "load: Model.Rate"},
		{"name: x\nload: {model: closed, duration: 1s}\n", "load: Model.Users"},
		{"name: x\nload: {model: open, rate: 10}\n", "load.duration or events.total"},
		{"name: x\nevents: {duplicate_ratio: 1.5}\n" + load, "events: gen: DuplicateRatio"},
		{"name: x\nevents: {per_request: 20000}\n" + load, "events: gen: EventsPerRequest"},
		{"name: x\nevents: {shared_ids: 1.5}\n" + load, "events: gen: SharedIDs: 1.5 is outside [0, 1)"},
		{"name: x\nevents: {shared_ids: 0.1, topics: 1}\n" + load, "events: gen: SharedIDs: 0.1 needs at least 2 topics"},
		{"name: x\nenv: {settings: {WORKER_COUNT: \"0\"}}\n" + load, "env.settings: config: WORKER_COUNT"},
		{"name: x\n" + load + "nemesis:\n  - {fault: freeze, target: redis}\n", "nemesis[0].fault"},
		{"name: x\n" + load + "nemesis:\n  - {fault: kill, target: service-1}\n", `nemesis[0].target "service-1": no such node`},
		{"name: x\nenv: {services: 2}\nexpect: {rejected: true}\n" + load + "nemesis:\n  - {fault: kill, target: service-1}\n", ""},
		{"name: x\nenv: {services: 2}\n" + load + "nemesis:\n  - {fault: kill, target: service-1}\n", "expect: a scenario with faults must name"},
		{"name: x\nexpect: {claimed: true}\n" + load, "expect: effects are what faults provoke"},
		{"name: x\nexpect: {slowed: true}\n" + load + "nemesis:\n  - {fault: cut, target: redis}\n", "expect.slowed"},
		{"name: x\nexpect: {drained: true}\n" + load, "field drained not found"},
		{"name: x\n" + load + "nemesis:\n  - {fault: kill, target: service, every: -1s}\n", "nemesis[0].every"},
		{"name: x\nkind: search\nload: {model: open}\nsearch: {start: 100, step_duration: 1s, p99: 10ms, max_steps: 2}\n", ""},
		{"name: x\nkind: search\nload: {model: open}\n", "search: start"},
		{"name: x\nkind: search\nload: {model: closed, users: 2}\nsearch: {start: 100, step_duration: 1s, p99: 10ms, max_steps: 2}\n", "load.model"},
	}
	for _, c := range cases {
		_, err := scenario.Parse([]byte(c.doc), false)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.doc, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want one naming %q", c.doc, err, c.err)
		}
	}
}

// TestSharedIDsDefault: events.shared_ids is gen.DefaultSharedIDs in a
// scenario with faults (smoke overrides of events: included) and at least
// 2 topics, 0 without faults or with one topic, and as written when set;
// every fault scenario of scenarios/ shares ids.
func TestSharedIDsDefault(t *testing.T) {
	t.Parallel()
	const faults = "expect: {rejected: true}\nnemesis:\n  - {fault: kill, target: service-0}\n"
	const load = "load: {model: open, rate: 10, duration: 1s}\n"
	for _, c := range []struct {
		doc   string
		smoke bool
		want  float64
	}{
		{"name: x\n" + load, false, 0},
		{"name: x\n" + load + faults, false, gen.DefaultSharedIDs},
		{"name: x\nevents: {topics: 1}\n" + load + faults, false, 0},
		{"name: x\nevents: {shared_ids: 0}\n" + load + faults, false, 0},
		{"name: x\nevents: {shared_ids: 0.3}\n" + load, false, 0.3},
		{"name: x\n" + load + faults + "smoke: {events: {topics: 4}}\n", true, gen.DefaultSharedIDs},
	} {
		s, err := scenario.Parse([]byte(c.doc), c.smoke)
		if err != nil {
			t.Fatalf("%q: %v", c.doc, err)
		}
		if s.Events.SharedIDs == nil || *s.Events.SharedIDs != c.want {
			t.Errorf("%q (smoke %v): shared_ids %v, want %v", c.doc, c.smoke, s.Events.SharedIDs, c.want)
		}
	}
	names, err := scenario.Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		for _, smoke := range []bool{false, true} {
			s, err := scenario.Load(name, smoke)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(s.Nemesis) > 0 && *s.Events.SharedIDs == 0 {
				t.Errorf("%s (smoke %v): a fault scenario whose event ids are never shared across topics", name, smoke)
			}
		}
	}
}

// TestSuitesTable checks the suites table against the scenario files of a
// folder of its own.
func TestSuitesTable(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CHRONICLE_SCENARIOS", dir)
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("crash.yaml", "name: crash\nload: {model: open, rate: 10, duration: 1s}\n")
	write("fast.yaml", "name: fast\nkind: bench\nload: {model: open, rate: 10, duration: 1s}\n")
	cases := []struct {
		table string
		err   string // "" when valid
	}{
		{"verify: [crash]\nbench: [fast]\nbench-smoke: [fast]\n", ""},
		{"verify: [crash]\nbench: [fast]\nnightly: [fast]\n", `unknown suite "nightly"`},
		{"verify: [crash, gone]\nbench: [fast]\n", `verify[1] "gone": no such scenario`},
		{"verify: [crash, crash]\nbench: [fast]\n", `verify[1] "crash": listed twice`},
		{"verify: [crash, fast]\nbench: [fast]\n", `verify[1] "fast": a bench scenario`},
		{"verify: [crash]\n", `scenario "fast" is in none of verify, verify-full-only, bench and soak`},
		{"bench: [fast]\nsoak: [crash]\n", ""},
		{"verify: [crash]\nbench: [fast]\nsoak: [fast]\n", `soak[0] "fast": a bench scenario`},
		{"verify: [crash]\nverify-full-only: [crash]\nbench: [fast]\n", `scenario "crash" is in both verify and verify-full-only`},
		{"verify-full-only: [crash]\nbench: [fast]\n", ""},
	}
	for _, c := range cases {
		write(scenario.SuitesFile, c.table)
		_, err := scenario.Suites()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.table, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want one naming %q", c.table, err, c.err)
		}
	}
	write(scenario.SuitesFile, "verify: [crash]\nbench: [fast]\n")
	if names, err := scenario.Names(); err != nil || !slices.Equal(names, []string{"crash", "fast"}) {
		t.Errorf("Names = %v, %v; want the scenarios without the suites table", names, err)
	}
	if got, err := scenario.Suite(scenario.SuiteVerify); err != nil || !slices.Equal(got, []string{"crash"}) {
		t.Errorf("Suite(verify) = %v, %v", got, err)
	}
	write("race.yaml", "name: race\nload: {model: open, rate: 10, duration: 1s}\n")
	write(scenario.SuitesFile, "verify: [crash]\nverify-full-only: [race]\nbench: [fast]\n")
	if got, err := scenario.Suite(scenario.SuiteVerifyFull); err != nil || !slices.Equal(got, []string{"crash", "race"}) {
		t.Errorf("Suite(verify-full) = %v, %v; want verify then verify-full-only", got, err)
	}
	if _, err := scenario.Suite(scenario.SuiteBenchSmoke); err == nil {
		t.Errorf("Suite of a suite the table lacks: no error")
	}
}

// The comparison of subjects bounds the rate search (throughput's peers
// block); smoke still wins over it; a plain load ignores it.
func TestPeersOverride(t *testing.T) {
	t.Parallel()
	full, err := scenario.Load("throughput", false)
	if err != nil {
		t.Fatal(err)
	}
	peers, err := scenario.LoadPeers("throughput", false)
	if err != nil {
		t.Fatal(err)
	}
	smoke, err := scenario.LoadPeers("throughput", true)
	if err != nil {
		t.Fatal(err)
	}
	if full.Peers == nil || full.Events.Total != 200000 || full.Search.MaxSteps != 14 {
		t.Errorf("full: events %d, max steps %d", full.Events.Total, full.Search.MaxSteps)
	}
	if peers.Events.Total != 20000 || peers.Search.Start != 50 || peers.Search.MaxSteps != 6 {
		t.Errorf("peers: events %d, start %v, max steps %d", peers.Events.Total, peers.Search.Start, peers.Search.MaxSteps)
	}
	if smoke.Search.MaxSteps != 2 {
		t.Errorf("peers smoke: max steps %d, want the smoke block's 2", smoke.Search.MaxSteps)
	}
}

// reply-lost-redis sends no Idempotency-Key: the Redis client's retries it
// is about would be recognised by the key record and hidden, and it is the
// fault scenario that keeps the checker's bound (no keys) exercised.
// Every other scenario sends keys (the default).
func TestIdempotencyKeysSetting(t *testing.T) {
	t.Parallel()
	names, err := scenario.Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		s, err := scenario.Load(name, true)
		if err != nil {
			t.Fatal(err)
		}
		off := s.Events.IdempotencyKeys != nil && !*s.Events.IdempotencyKeys
		if off != (name == "reply-lost-redis") {
			t.Errorf("%s: idempotency_keys off = %v", name, off)
		}
		keyed := scenario.Options{}.IdempotencyHeader(s) != ""
		if want := s.Kind == scenario.KindCheck && !off; keyed != want {
			t.Errorf("%s (kind %s): sends keys = %v, want %v", name, s.Kind, keyed, want)
		}
	}
}
