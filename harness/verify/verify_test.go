package verify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/harness/progress"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/harness/verify"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestVerify runs the fault suite (bounded smoke set; CHRONICLE_FULL=1 for
// full length) and every negative control, each as a subtest. Each
// scenario must be valid with every planned fault applied; each planted bug
// must make its scenario invalid. With CHRONICLE_RESULTS set to a folder it
// also writes verify.json there (`chronicle report --md verify` renders
// verify.md from it).
//
// It takes minutes, so -short skips it; `make verify` runs it on its own.
func TestVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault suite takes minutes; make verify runs it without -short")
	}
	full := os.Getenv("CHRONICLE_FULL") == "1"
	dir, err := scenario.Dir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(dir)
	keep, err := scenario.KeepRunsSetting()
	if err != nil {
		t.Fatal(err)
	}
	// go test's output is not a terminal: progress goes through t.Logf as
	// plain lines (-v streams them), a status after 10 s of silence.
	p := progress.Lines(t.Logf, progress.Every)
	o := scenario.Options{Smoke: !full, RunsDir: filepath.Join(root, "runs"), KeepRuns: keep, Logf: p.Logf,
		Status: func(st scenario.Status) { p.Status(st.String()) }}
	cmd := "make verify"
	if full {
		cmd = "make verify-full"
	}
	// CHRONICLE_ONLY: a comma-separated subset of the scenarios, for development.
	name := scenario.SuiteVerify
	if full {
		name = scenario.SuiteVerifyFull
	}
	suite, err := verify.Load(name, os.Getenv("CHRONICLE_ONLY"), true)
	if err != nil {
		t.Fatal(err)
	}
	// The bounded run's controls run two at a time (make verify stays
	// under 20 minutes); the published run's one at a time.
	// CHRONICLE_CONTROLS_AT_ONCE=N chooses.
	suite.ControlsAtOnce = 2
	if full {
		suite.ControlsAtOnce = 1
	}
	if s := os.Getenv("CHRONICLE_CONTROLS_AT_ONCE"); s != "" {
		if suite.ControlsAtOnce, err = strconv.Atoi(s); err != nil || suite.ControlsAtOnce < 1 {
			t.Fatalf("CHRONICLE_CONTROLS_AT_ONCE=%q: want a whole number of at least 1", s)
		}
	}
	p.Items(len(suite.Scenarios) + len(suite.Controls))
	v := suite.Run(context.Background(), cmd, o, func(name string, item verify.Item) {
		defer p.ItemDone()
		t.Run(name, func(t *testing.T) {
			line, err := item()
			if errors.Is(err, scenario.ErrSkipped) {
				t.Skip(err) // shown as skipped, never as passed
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Log(line)
		})
	})
	if out := os.Getenv("CHRONICLE_RESULTS"); out != "" {
		if err := results.WriteVerify(out, v); err != nil {
			t.Fatalf("write results: %v", err)
		}
		t.Logf("wrote %s: %s", filepath.Join(out, results.VerifyFile), verify.Summary(v))
	}
	if u, err := scenario.Usage(o.RunsDir); err == nil {
		t.Logf("%s (the newest %d of each scenario are kept; %s sets how many, 0: all)", u, keep, scenario.KeepRunsEnv)
	}
}

// TestSuites checks the suites table against the scenario files and the
// controls: every control's bug is a planted bug, listed once, exposed by a
// scenario of the fault suite; and Load narrows a suite as documented.
func TestSuites(t *testing.T) {
	t.Parallel()
	all, err := scenario.Suites()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range all[scenario.SuiteBenchSmoke] {
		if !slices.Contains(all[scenario.SuiteBench], n) {
			t.Errorf("%s: %s is not in %s", scenario.SuiteBenchSmoke, n, scenario.SuiteBench)
		}
	}
	seen := map[string]bool{}
	for _, c := range verify.Controls {
		if !slices.Contains(planted.Names(), c.Bug) {
			t.Errorf("control %s: not a planted bug (%v)", c.Bug, planted.Names())
		}
		if !slices.Contains(all[scenario.SuiteVerify], c.Scenario) && !slices.Contains(all[scenario.SuiteVerifyFullOnly], c.Scenario) {
			t.Errorf("control %s: scenario %s is not in the fault suite", c.Bug, c.Scenario)
		}
		if seen[c.Bug] {
			t.Errorf("control %s: listed twice", c.Bug)
		}
		seen[c.Bug] = true
	}

	s, err := verify.Load(scenario.SuiteVerify, "hot-keys,crash-service", true)
	if err != nil {
		t.Fatal(err)
	}
	var bugs []string
	for _, c := range s.Controls {
		bugs = append(bugs, c.Bug)
	}
	wantBugs := []string{planted.AckBeforeCommit, planted.PopAndForget, planted.StatsOutsideTx, planted.SelectThenInsert, planted.DedupEventID, planted.IdempotencyForgotten}
	if !slices.Equal(s.Scenarios, []string{"crash-service", "hot-keys"}) || !slices.Equal(bugs, wantBugs) {
		t.Errorf("Load(verify, hot-keys,crash-service) = %v with controls %v; want the suite's order and their controls %v", s.Scenarios, bugs, wantBugs)
	}
	if s, err := verify.Load(scenario.SuiteBench, "", true); err != nil || len(s.Controls) != 0 || len(s.Scenarios) != len(all[scenario.SuiteBench]) {
		t.Errorf("Load(bench) = %+v, %v; want every benchmark and no control", s, err)
	}
	if _, err := verify.Load(scenario.SuiteVerify, "seed-k6", true); err == nil || !strings.Contains(err.Error(), `"seed-k6" is not a scenario of suite verify`) {
		t.Errorf("Load with a scenario outside the suite: %v", err)
	}
	if _, err := verify.Load("nightly", "", false); err == nil {
		t.Errorf("Load of an unknown suite: no error")
	}
}

// TestRunLoop runs a suite of a scenario that cannot load and a control
// whose scenario cannot load: each item must fail with the reason, be
// recorded, and the loop must go on to the next item.
func TestRunLoop(t *testing.T) {
	t.Parallel()
	s := verify.Suite{Scenarios: []string{"no-such-scenario", "nor-this-one"}, Controls: []verify.Control{{planted.NoLedger, "no-such-scenario"}}}
	var names []string
	var errs []string
	v := s.Run(context.Background(), "go test", scenario.Options{RunsDir: t.TempDir()}, func(name string, item verify.Item) {
		names = append(names, name)
		line, err := item()
		if err == nil {
			t.Errorf("%s passed: %s", name, line)
			return
		}
		errs = append(errs, err.Error())
	})
	want := []string{"scenario/no-such-scenario", "scenario/nor-this-one", "planted/" + planted.NoLedger}
	if !slices.Equal(names, want) {
		t.Errorf("items %v, want %v", names, want)
	}
	if len(v.Scenarios) != 2 || v.Scenarios[0].Name != "no-such-scenario" || v.Scenarios[0].Error == "" || len(v.PlantedBugs) != 1 ||
		v.PlantedBugs[0].Caught || v.PlantedBugs[0].What != planted.Descriptions[planted.NoLedger] {
		t.Errorf("record %+v", v)
	}
	if len(errs) == 3 && !strings.Contains(errs[0], "no-such-scenario") {
		t.Errorf("error %q does not name the scenario", errs[0])
	}
	if v.Header.Command != "go test" || v.Header.Go == "" {
		t.Errorf("header %+v", v.Header)
	}
	if got := verify.Summary(v); !strings.Contains(got, "no-such-scenario invalid") || !strings.Contains(got, planted.NoLedger+" not caught") {
		t.Errorf("Summary = %q", got)
	}
}
