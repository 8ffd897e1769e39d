package scenario_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
)

// A during: frame whose fault is a link fault gets its proxy, end to end:
// SIGTERM lands while the link to PostgreSQL is cut, so the drain cannot
// finish within SHUTDOWN_TIMEOUT, which the service logs and the run
// requires (expect drain_cut). The fault applies without error and the
// run is valid: nothing acknowledged lost, stats exact.
func TestFramedLinkFaultGetsItsProxy(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := scenario.Parse([]byte(`
name: framed-cut
expect: {drain_cut: true, own_pending: true}
env: {settings: {WORKER_COUNT: "2", BATCH_SIZE: "20", SHUTDOWN_TIMEOUT: "1s"}}
events: {per_request: 5, topics: 2}
load: {model: open, rate: 100, duration: 3s, timeout: 5s}
nemesis:
  - {fault: terminate, target: service-0, every: 500ms, for: 1s, during: {fault: cut, target: postgres, lead: 1s}}
`), false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := scenario.Run(ctx, s, scenario.Options{RunsDir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Faults) != 1 || res.Faults[0].Error != "" || res.Faults[0].During != "cut postgres" {
		t.Fatalf("faults %+v: want one terminate framed in a cut of postgres, applied", res.Faults)
	}
	if !res.Valid {
		t.Fatalf("invalid: %s (run folder %s)", strings.Join(res.Violations, "; "), res.RunDir)
	}
	for _, f := range res.Effects {
		if !f.Shown {
			t.Errorf("effect %s not shown: %+v", f.Name, f)
		}
	}
}

// A fault that fails to apply makes the run invalid, and the verdict says
// why: here the faults of a scenario run against an external service,
// which cannot inject them (nor read the service log for the effect).
func TestFaultErrorInvalidatesRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := env.StartLocal(ctx, env.LocalOptions{Services: 1, RunDir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := scenario.Parse([]byte(`
name: unappliable
expect: {rejected: true, own_pending: true}
load: {model: open, rate: 50, duration: 2s, timeout: 5s}
nemesis:
  - {fault: kill, target: service-0, every: 300ms, for: 100ms}
`), false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := scenario.Run(ctx, s, scenario.Options{RunsDir: t.TempDir(), Target: l.Targets()[0], DatabaseURL: l.DatabaseURL()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Valid {
		t.Fatalf("valid although its fault could not apply: %+v", res.Faults)
	}
	if !res.Check.Valid {
		t.Errorf("the checker itself found violations: %v", res.Check.Violations)
	}
	joined := strings.Join(res.Violations, "\n")
	for _, want := range []string{"fault kill service-0", "did not apply as planned", "not supported", "effect rejected", "effect own_pending", "not measured"} {
		if !strings.Contains(joined, want) {
			t.Errorf("verdict %q does not say %q", joined, want)
		}
	}
	if len(res.FaultErrors) == 0 {
		t.Errorf("no fault error recorded")
	}
}
