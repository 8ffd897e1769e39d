// Package verify runs the harness's suites (scenarios/suites.yaml): the
// fault suite, whose scenarios must all be valid and whose planted bugs
// must each make the scenario meant to expose them invalid, and the
// benchmark suites, whose runs must be valid. The `make verify` test
// (TestVerify) and the command line (chronicle verify, chronicle bench)
// all run a suite through Suite.Run, the one loop over a suite.
package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// Control is a negative control of the fault suite: a planted bug and the
// scenario that must expose it.
type Control struct{ Bug, Scenario string }

// Controls map each planted bug to the scenario that must expose it.
var Controls = []Control{
	{planted.AckBeforeCommit, "crash-service"},
	{planted.PopAndForget, "crash-service"},
	{planted.StatsOutsideTx, "crash-service"},
	{planted.SelectThenInsert, "hot-keys"},
	{planted.NoLedger, "slow-postgres"},
	{planted.RedisNoAOF, "crash-redis"},
	{planted.PublishOKOnTimeout, "pause-redis"},
	{planted.LedgerByEntryID, "reply-lost-redis"},
	{planted.AckOnDrainCut, "terminate-in-outage"},
	{planted.DedupEventID, "hot-keys"},
	{planted.IdempotencyForgotten, "crash-service"},
	{planted.PublishOKOnDiskError, "disk-full-redis"},
	{planted.DiskFullIgnored, "disk-full-postgres"},
	// The hostile client's bad query input must be 422: unchecked, a NUL
	// reaches PostgreSQL and answers 503.
	{planted.QueryUnchecked, "hostile"},
}

// Suite is one run of a suite: its scenarios, then its controls, in order.
type Suite struct {
	Name      string
	Scenarios []string
	Controls  []Control
	// ControlsAtOnce is how many controls run at the same time, each on
	// its own environment (0 or 1: one after the other). A control only
	// has to be caught, so running two at once on a busy machine changes
	// nothing it shows; the scenarios, which must be valid, always run one
	// at a time.
	ControlsAtOnce int
}

// Load reads suite name from the suites table; the fault suite
// (scenario.SuiteVerify, the bounded set, or scenario.SuiteVerifyFull)
// comes, when controls is set, with the Controls whose scenario it runs.
// only, when not empty, is a comma-separated subset of the suite's
// scenarios: the suite keeps those (in its order) and the controls whose
// scenario is one of them. A name in only that is not in the suite is an
// error.
func Load(name, only string, controls bool) (Suite, error) {
	names, err := scenario.Suite(name)
	if err != nil {
		return Suite{}, err
	}
	s := Suite{Name: name, Scenarios: names}
	if controls && (name == scenario.SuiteVerify || name == scenario.SuiteVerifyFull) {
		s.Controls = slices.DeleteFunc(slices.Clone(Controls), func(c Control) bool { return !slices.Contains(names, c.Scenario) })
	}
	if only == "" {
		return s, nil
	}
	keep := strings.Split(only, ",")
	for _, n := range keep {
		if !slices.Contains(names, n) {
			return Suite{}, fmt.Errorf("verify: %q is not a scenario of suite %s (%s)", n, name, strings.Join(names, ", "))
		}
	}
	s.Scenarios = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !slices.Contains(keep, n) })
	s.Controls = slices.DeleteFunc(slices.Clone(s.Controls), func(c Control) bool { return !slices.Contains(keep, c.Scenario) })
	return s, nil
}

// Item runs one item of a suite and returns a line on what it showed, or
// why it failed: a scenario that could not run or is invalid (which
// includes faults that did not all apply as planned and expected effects
// not seen); a control that could not run as planned or whose bug the
// checker did not catch.
type Item func() (string, error)

// Run runs the suite's scenarios, then its controls, each through do
// under its name ("scenario/NAME", "planted/BUG"): the test makes each
// item a subtest, the command line runs it and collects its error. It
// returns the record of the run: a header for command, completed with the
// first scenario's environment, each scenario's result and each control's
// outcome, in the suite's order. It stops early when ctx ends. do may be
// called from several goroutines at once when ControlsAtOnce > 1 (as
// testing.T.Run may).
func (s Suite) Run(ctx context.Context, command string, o scenario.Options, do func(name string, item Item)) results.Verify {
	v := results.Verify{Header: results.CollectHeader(command)}
	for _, name := range s.Scenarios {
		do("scenario/"+name, func() (string, error) {
			start := time.Now()
			res, err := runScenario(ctx, name, o)
			v.Scenarios = append(v.Scenarios, res)
			v.Header.Fill(res.Environment)
			if err := scenarioFailure(res, err); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s: valid in %s; %d faults, longest recovery %.2fs",
				name, time.Since(start).Round(time.Second), len(res.Faults), res.MaxToReady), nil
		})
		if ctx.Err() != nil {
			return v
		}
	}
	at := max(s.ControlsAtOnce, 1)
	bugs := make([]*results.PlantedBug, len(s.Controls))
	slots := make(chan struct{}, at)
	var wg sync.WaitGroup
	for i, c := range s.Controls {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		co := o
		if at > 1 && o.Logf != nil {
			// Lines of controls running at once name their bug.
			co.Logf = func(format string, args ...any) { o.Logf("[%s] "+format, append([]any{c.Bug}, args...)...) }
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			do("planted/"+c.Bug, func() (string, error) {
				pb, err := runControl(ctx, c, co)
				bugs[i] = &pb
				switch {
				case err != nil:
					return "", fmt.Errorf("run: %w", err)
				case !pb.Caught:
					return "", fmt.Errorf("planted bug %s (%s) NOT caught by %s (run folder %s)", c.Bug, pb.What, c.Scenario, pb.RunDir)
				}
				return fmt.Sprintf("%s caught by %s: %s", c.Bug, c.Scenario, strings.Join(pb.Violations, "; ")), nil
			})
		}()
	}
	wg.Wait()
	for _, pb := range bugs {
		if pb != nil {
			v.PlantedBugs = append(v.PlantedBugs, *pb)
		}
	}
	return v
}

// scenarioFailure says why a scenario run fails its suite: it could not
// run, or it is invalid (a checker violation, a fault that did not apply as
// planned, an expected effect not seen: the run's verdict says which).
func scenarioFailure(res results.Scenario, err error) error {
	if errors.Is(err, scenario.ErrSkipped) {
		return fmt.Errorf("%w (not measured, not passed): %s", scenario.ErrSkipped, res.Skipped)
	}
	if err != nil {
		return fmt.Errorf("run: %w (run folder %s)", err, res.RunDir)
	}
	if !res.Valid {
		return fmt.Errorf("INVALID: %s (run folder %s)", strings.Join(res.AllViolations(), "; "), res.RunDir)
	}
	return nil
}

// runScenario runs one scenario.
func runScenario(ctx context.Context, name string, o scenario.Options) (results.Scenario, error) {
	s, err := scenario.Load(name, o.Smoke)
	if err != nil {
		return results.Scenario{Name: name, Error: err.Error()}, err
	}
	return scenario.Run(ctx, s, o)
}

// runControl runs the scenario of a planted bug with the bug switched on
// and records whether the checker caught it (or, in a scenario with an
// attack, the checks of the answers to it). Only those verdicts count: a
// control whose faults did not all apply did not run as planned (an
// error, not a catch), and an expected effect missing is not a catch
// either.
func runControl(ctx context.Context, c Control, o scenario.Options) (results.PlantedBug, error) {
	pb := results.PlantedBug{Bug: c.Bug, What: planted.Descriptions[c.Bug], Scenario: c.Scenario}
	o.PlantedBug = c.Bug
	res, err := runScenario(ctx, c.Scenario, o)
	pb.RunDir = res.RunDir
	if errors.Is(err, scenario.ErrSkipped) {
		return pb, fmt.Errorf("%w: control %s not run (not caught, not passed): %s", scenario.ErrSkipped, c.Bug, res.Skipped)
	}
	if err != nil {
		return pb, fmt.Errorf("verify: control %s: %w", c.Bug, err)
	}
	if len(res.FaultErrors) > 0 {
		return pb, fmt.Errorf("verify: control %s: the faults did not apply as planned: %s (run folder %s)",
			c.Bug, strings.Join(res.FaultErrors, "; "), res.RunDir)
	}
	pb.Caught = !res.Check.Valid
	pb.Violations = res.Check.Violations
	// A scenario with an attack also checks the service's answers to it.
	if av := scenario.AttackAnswerViolations(res); len(av) > 0 {
		pb.Caught = true
		pb.Violations = append(slices.Clone(pb.Violations), av...)
	}
	return pb, nil
}

// Summary is a one-line account of a suite run.
func Summary(v results.Verify) string {
	var bad []string
	for _, s := range v.Scenarios {
		switch {
		case s.Skipped != "":
			bad = append(bad, s.Name+" skipped ("+s.Skipped+")")
		case !s.Valid:
			bad = append(bad, s.Name+" invalid")
		}
	}
	for _, b := range v.PlantedBugs {
		if !b.Caught {
			bad = append(bad, b.Bug+" not caught")
		}
	}
	if len(bad) == 0 {
		return fmt.Sprintf("%d scenarios valid, %d planted bugs caught", len(v.Scenarios), len(v.PlantedBugs))
	}
	return strings.Join(bad, "; ")
}
