package scenario_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/harness/subject"
)

// Our own binary, run as a foreign command through --service-cmd (the
// pluggable path every foreign subject takes on the local backend), in a
// fault scenario: every fault applies to it, the run is valid, and the
// subject's CPU is measured through the process tree the harness started.
func TestServiceCmdFaultScenario(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "chronicleweaver")
	build := exec.Command("go", "build", "-o", bin, "github.com/chronicleweaver/chronicleweaver/service/cmd/chronicleweaver")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	subj, err := subject.Load(subject.Default)
	if err != nil {
		t.Fatal(err)
	}
	s, err := scenario.Load("crash-service", true)
	if err != nil {
		t.Fatal(err)
	}
	planned := 0
	for _, f := range s.Nemesis {
		planned += f.Count
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := scenario.Run(ctx, s, scenario.Options{Smoke: true, RunsDir: t.TempDir(), Subject: subj, ServiceCmd: bin, Logf: t.Logf})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !res.Valid {
		t.Fatalf("invalid: %v (run folder %s)", res.Check.Violations, res.RunDir)
	}
	if len(res.Faults) != planned {
		t.Fatalf("%d faults injected, %d planned", len(res.Faults), planned)
	}
	for _, f := range res.Faults {
		if f.Error != "" {
			t.Errorf("fault %s on %s: %s", f.Kind, f.Target, f.Error)
		}
	}
	if res.Subject != subject.Default || res.Environment.Subject != subject.Default {
		t.Errorf("subject recorded as %q / %q", res.Subject, res.Environment.Subject)
	}
	if res.Perf == nil || res.Perf.CPUSeconds <= 0 || res.Perf.PeakRSSMiB <= 0 || res.Perf.UsageNotMeasured != "" {
		t.Errorf("usage of the command not measured: %+v", res.Perf)
	}
	for _, c := range []string{checker.CheckLost, checker.CheckStatsExact, checker.CheckAuditExact} {
		if !res.Check.Measured(c) {
			t.Errorf("%s not measured for our own service: %v", c, res.Check.NotMeasured)
		}
	}
}

// A command that never becomes ready ends the run with an error that
// names the instance and shows its last log lines.
func TestServiceCmdNeverReady(t *testing.T) {
	subj, err := subject.Load(subject.Default)
	if err != nil {
		t.Fatal(err)
	}
	s, err := scenario.Load("crash-service", true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = scenario.Run(ctx, s, scenario.Options{Smoke: true, RunsDir: t.TempDir(), Subject: subj,
		ServiceCmd: `sh -c 'echo listening on ${APP_PORT} nowhere; sleep 0.2; echo giving up; exit 3'`})
	if err == nil {
		t.Fatal("a command that exits before it is ready must fail the run")
	}
	for _, want := range []string{"service-0", "before it was ready", "giving up"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
