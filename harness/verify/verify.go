// Package verify is the fault suite: every check scenario must be valid, and
// every planted bug must make the scenario meant to expose it invalid. The
// `make verify` test and the CLI's verify command both run it from here.
package verify

import (
	"context"
	"fmt"
	"strings"

	"github.com/chronicleweaver/chronicleweaver/harness/report"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// Scenarios are the fault scenarios, in the order they run.
var Scenarios = []string{
	"crash-service", "crash-redis", "restart-postgres", "cut-postgres", "cut-redis",
	"pause-service", "graceful-restart", "two-instances", "slow-postgres", "hot-keys",
}

// Controls map each planted bug to the scenario that must expose it.
var Controls = []struct{ Bug, Scenario string }{
	{planted.AckBeforeCommit, "crash-service"},
	{planted.PopAndForget, "crash-service"},
	{planted.StatsOutsideTx, "crash-service"},
	{planted.SelectThenInsert, "hot-keys"},
	{planted.NoLedger, "slow-postgres"},
	{planted.RedisNoAOF, "crash-redis"},
}

// RunScenario runs one fault scenario.
func RunScenario(ctx context.Context, name string, o scenario.Options) (report.Scenario, error) {
	s, err := scenario.Load(name, o.Smoke)
	if err != nil {
		return report.Scenario{Name: name, Error: err.Error()}, err
	}
	return scenario.Run(ctx, s, o)
}

// RunControl runs the scenario of a planted bug with the bug switched on and
// reports whether the checker caught it.
func RunControl(ctx context.Context, bug, name string, o scenario.Options) (report.PlantedBug, error) {
	pb := report.PlantedBug{Bug: bug, What: planted.Descriptions[bug], Scenario: name}
	o.PlantedBug = bug
	res, err := RunScenario(ctx, name, o)
	pb.RunDir = res.RunDir
	if err != nil {
		return pb, fmt.Errorf("verify: control %s: %w", bug, err)
	}
	pb.Caught = !res.Valid
	pb.Violations = res.Check.Violations
	return pb, nil
}

// Summary is a one-line account of a suite run.
func Summary(v report.Verify) string {
	var bad []string
	for _, s := range v.Scenarios {
		if !s.Valid {
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

// FillHeader copies the environment of a run into a results header (the
// first run's; settings that differ are in each scenario's record).
func FillHeader(h *report.Header, res report.Scenario) {
	e := res.Environment
	if h.Backend == "" && e.Backend != "" {
		h.Backend, h.Postgres, h.Redis, h.DurableDB, h.Settings = e.Backend, e.Postgres, e.Redis, e.DurableDB, e.Settings
	}
}
