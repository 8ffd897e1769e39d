package properties

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/harness/verify"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// TestPlantedBugsAreCaught switches each planted bug on (a service built
// with the plantedbugs tag) and runs the property meant to expose it; the
// property must fail. rapid reports to a recording TB, so the inner failure
// is data for this test, not a failure of it. For each bug it logs, and
// records for CHRONICLE_RESULTS, the checks run up to the first failure and
// the shrunk counterexample.
//
// A control with a blind property (the property without the generator
// dimension meant to catch its bug) first runs that, which must pass.
//
// The bounded run (make verify) leaves the state machine controls to the
// fault suite, whose controls catch the same bugs in the same run (the
// test fails if one of them is not there); make verify-full runs both.
//
// Under -short only the cheap controls run (select-then-insert, caught by
// racing duplicates; dedup-event-id, caught by set semantics with event
// ids shared across topics; arrays-unchecked, caught by bad input with
// nested payloads); the others each start an environment and
// crash it.
func TestPlantedBugsAreCaught(t *testing.T) {
	t.Parallel()
	controls := []struct {
		bug      string
		property string
		settings map[string]string
		noAOF    bool
		fsync    string
		prop     func(e *env.Local) func(*rapid.T)
		checks   budget
		// blind, when set, is the property without the generator
		// dimension meant to catch the bug: it must pass (checks of its
		// own), which shows that the dimension, not the rest of the
		// property, is what catches the bug.
		blind     func(e *env.Local) func(*rapid.T)
		dimension string
	}{
		{bug: planted.SelectThenInsert, property: propRacing, settings: apiSettings,
			prop: func(e *env.Local) func(*rapid.T) { return racingDuplicates(e, true) }, checks: racingChecks.twice()},
		{bug: planted.DedupEventID, property: propSet, settings: apiSettings,
			prop:  func(e *env.Local) func(*rapid.T) { return setSemantics(e, true) },
			blind: func(e *env.Local) func(*rapid.T) { return setSemantics(e, false) }, dimension: "event ids shared across topics",
			checks: setChecks.twice()},
		{bug: planted.ArraysUnchecked, property: propBad, settings: apiSettings,
			prop:  func(e *env.Local) func(*rapid.T) { return badInput(e, true) },
			blind: func(e *env.Local) func(*rapid.T) { return badInput(e, false) }, dimension: "nested payloads",
			checks: badChecks.twice()},
		// The guards against hostile input (issue 16), each removed by
		// its own bug, caught by the hostile-input property.
		{bug: planted.Unbounded422, property: propHostile, settings: hostileSettings, prop: hostileControl, checks: hostileChecks.twice()},
		{bug: planted.NumbersPrintLarge, property: propHostile, settings: hostileSettings, prop: hostileControl, checks: hostileChecks.twice()},
		{bug: planted.QueryUnchecked, property: propHostile, settings: hostileSettings, prop: hostileControl, checks: hostileChecks.twice()},
		{bug: planted.PublishAnyContentType, property: propHostile, settings: hostileSettings, prop: hostileControl, checks: hostileChecks.twice()},
		{bug: planted.EventsPageUnbounded, property: propHostile, settings: hostileSettings, prop: hostileControl, checks: hostileChecks.twice()},
		{bug: planted.StatsTopicsUnbounded, property: propHostile, settings: hostileSettings, prop: hostileControl, checks: hostileChecks.twice()},
		{bug: planted.AckBeforeCommit, property: propMachine, settings: machineSettings, fsync: machineFsync, prop: stateMachine, checks: machineChecks.twice()},
		{bug: planted.PopAndForget, property: propMachine, settings: machineSettings, fsync: machineFsync, prop: stateMachine, checks: machineChecks.twice()},
		{bug: planted.StatsOutsideTx, property: propMachine, settings: machineSettings, fsync: machineFsync, prop: stateMachine, checks: machineChecks.twice()},
		{bug: planted.NoLedger, property: propMachine, settings: machineSettings, fsync: machineFsync, prop: stateMachine, checks: machineChecks.twice()},
		{bug: planted.RedisNoAOF, property: propMachine, settings: machineSettings, noAOF: true, prop: stateMachine, checks: machineChecks.twice()},
	}
	for _, c := range controls {
		t.Run(c.bug, func(t *testing.T) {
			if testing.Short() && c.property == propMachine {
				t.Skip("-short: the state machine controls take minutes")
			}
			if !full && c.property == propMachine {
				// The bounded run (make verify) leaves them to the fault
				// suite, which catches each of these bugs in the same run.
				sc, ok := boundedFaultControl(c.bug)
				if !ok {
					t.Fatalf("%s: no control of the bounded fault suite catches it, so the bounded run must run this one", c.bug)
				}
				t.Skipf("bounded run: %s is caught by the fault suite's %s in make verify; make verify-full runs this state machine control too", c.bug, sc)
			}
			t.Parallel()
			plantedSlots <- struct{}{}
			defer func() { <-plantedSlots }()

			settings := map[string]string{planted.EnvVar: c.bug}
			for k, v := range c.settings {
				settings[k] = v
			}
			e, err := startEnv(t, "planted-"+c.bug, env.LocalOptions{
				Settings: settings, BuildTags: []string{"plantedbugs"}, NoAOF: c.noAOF, AppendFsync: c.fsync,
			})
			if err != nil {
				t.Fatalf("start environment: %v", err)
			}
			defer func() {
				if err := e.Close(); err != nil {
					t.Logf("close environment: %v", err)
				}
			}()

			if c.blind != nil {
				bst := newRunStats(t)
				// It must pass every check: the bounded run gives it the
				// property's own number (half the control's), the full run
				// as many as the control may take.
				blindChecks := budget{bounded: c.checks.bounded / 2, full: c.checks.full}
				brec := runRecorded(t.Name()+"/blind", func(tb rapid.TB) { check(tb, blindChecks, bst, c.blind(e)) })
				if brec.Failed() {
					t.Fatalf("planted bug %s caught by %s WITHOUT %s (so the dimension is not what catches it): %s",
						c.bug, c.property, c.dimension, brec.errorText())
				}
				t.Logf("%s not caught by %s without %s in %d checks (as it must not be)", c.bug, c.property, c.dimension, bst.checksToFailure())
			}
			st := newRunStats(t)
			rec := runRecorded(t.Name(), func(tb rapid.TB) { check(tb, c.checks, st, c.prop(e)) })
			res := results.Property{Property: c.property, Bug: c.bug, Checks: st.checksToFailure(), Failed: rec.Failed()}
			if res.Failed {
				// rapid's replay of the minimised case, if it failed again;
				// else the smallest failing run (see runStats).
				lines, steps, replayed := example(rec.lines())
				if !replayed {
					lines, steps = st.counterexample()
				}
				res.ShrunkSteps, res.Example = steps, strings.Join(lines, "\n")
			}
			outcomes.add(res)
			// rapid's replay of the minimised case can run to hundreds of
			// lines (go test -v streams them); the counterexample logged
			// below holds its steps and violations. The whole replay is
			// logged when it matters: the bug was not caught.
			t.Logf("rapid said:\n%s", rec.errorText())
			if !res.Failed {
				t.Logf("rapid's replay of the minimised case:\n%s", strings.Join(rec.lines(), "\n"))
			}
			if !res.Failed {
				t.Fatalf("planted bug %s (%s) NOT caught by %s in %d checks", c.bug, planted.Descriptions[c.bug], c.property, res.Checks)
			}
			t.Logf("%s caught by %s after %d checks; shrunk to %d steps:\n%s",
				c.bug, c.property, res.Checks, res.ShrunkSteps, res.Example)
		})
	}
}

// boundedFaultControl names the scenario of the bounded fault suite
// (make verify's) whose control catches bug.
func boundedFaultControl(bug string) (string, bool) {
	suite, err := verify.Load(scenario.SuiteVerify, "", true)
	if err != nil {
		return "", false
	}
	for _, c := range suite.Controls {
		if c.Bug == bug {
			return c.Scenario, true
		}
	}
	return "", false
}

// plantedSlots bounds the planted-bug environments running at once.
var plantedSlots = make(chan struct{}, 3)

// recorder is a rapid.TB that records instead of failing: rapid.Check
// reports a failing property to it like to a *testing.T, and FailNow ends
// the goroutine (runtime.Goexit) as testing does.
type recorder struct {
	name string

	mu     sync.Mutex
	logs   []string // every line logged, in order
	errs   []string
	failed bool // Fail, Error or Fatal was called
}

var _ rapid.TB = (*recorder)(nil)

// runRecorded runs fn with a recorder in its own goroutine (FailNow ends
// it) and returns the recorder.
func runRecorded(name string, fn func(tb rapid.TB)) *recorder {
	r := &recorder{name: name}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

func (r *recorder) Helper()      {}
func (r *recorder) Name() string { return r.name }

func (r *recorder) Context() context.Context { return context.Background() }

func (r *recorder) Logf(format string, args ...any) { r.Log(fmt.Sprintf(format, args...)) }

func (r *recorder) Log(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, strings.TrimSuffix(fmt.Sprintln(args...), "\n"))
}

func (r *recorder) Errorf(format string, args ...any) { r.Error(fmt.Sprintf(format, args...)) }

func (r *recorder) Error(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, strings.TrimSuffix(fmt.Sprintln(args...), "\n"))
	r.failed = true
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.FailNow()
}

func (r *recorder) Fatal(args ...any) {
	r.Error(args...)
	r.FailNow()
}

func (r *recorder) FailNow() {
	r.Fail()
	runtime.Goexit()
}

func (r *recorder) Fail() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) Skipf(format string, args ...any) { r.Skip(fmt.Sprintf(format, args...)) }

func (r *recorder) Skip(args ...any) {
	r.Log(args...)
	r.SkipNow()
}

func (r *recorder) SkipNow() { runtime.Goexit() }

// lines are the lines logged to r: rapid's replay of the minimised case.
func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.logs...)
}

// errorText is what rapid reported (with the seed to replay).
func (r *recorder) errorText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return "(nothing: the property passed)"
	}
	return strings.Join(r.errs, "\n")
}
