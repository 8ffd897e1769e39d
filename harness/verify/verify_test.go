package verify_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/report"
	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
	"github.com/chronicleweaver/chronicleweaver/harness/verify"
)

// TestVerify runs the fault suite (bounded smoke set; CHRONICLE_FULL=1 for
// full length) and every negative control. Each scenario must be valid;
// each planted bug must make its scenario invalid. With CHRONICLE_RESULTS
// set to a folder it also writes verify.md and verify.json there.
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
	o := scenario.Options{Smoke: !full, RunsDir: filepath.Join(root, "runs"), Logf: t.Logf}
	cmd := "make verify"
	if full {
		cmd = "make verify-full"
	}
	v := report.Verify{Header: report.CollectHeader(cmd)}
	ctx := context.Background()
	only := os.Getenv("CHRONICLE_ONLY") // comma-separated scenario subset, for development

	for _, name := range verify.Scenarios {
		if only != "" && !strings.Contains(","+only+",", ","+name+",") {
			continue
		}
		t.Run("scenario/"+name, func(t *testing.T) {
			start := time.Now()
			res, err := verify.RunScenario(ctx, name, o)
			v.Scenarios = append(v.Scenarios, res)
			verify.FillHeader(&v.Header, res)
			if err != nil {
				t.Fatalf("run: %v (run folder %s)", err, res.RunDir)
			}
			if !res.Valid {
				t.Fatalf("INVALID: %s (run folder %s)", strings.Join(res.Check.Violations, "; "), res.RunDir)
			}
			if len(res.Faults) != countFaults(t, name, !full) {
				t.Errorf("%d faults injected, the scenario plans %d", len(res.Faults), countFaults(t, name, !full))
			}
			for _, f := range res.Faults {
				if f.Error != "" {
					t.Errorf("fault %s on %s: %s", f.Kind, f.Target, f.Error)
				}
			}
			t.Logf("%s: valid in %s; %d faults, longest recovery %.2fs", name, time.Since(start).Round(time.Second), len(res.Faults), res.MaxToReady)
		})
	}
	for _, c := range verify.Controls {
		if only != "" && !strings.Contains(","+only+",", ","+c.Scenario+",") {
			continue
		}
		t.Run("planted/"+c.Bug, func(t *testing.T) {
			pb, err := verify.RunControl(ctx, c.Bug, c.Scenario, o)
			v.PlantedBugs = append(v.PlantedBugs, pb)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if !pb.Caught {
				t.Fatalf("planted bug %s (%s) NOT caught by %s (run folder %s)", c.Bug, pb.What, c.Scenario, pb.RunDir)
			}
			t.Logf("%s caught by %s: %s", c.Bug, c.Scenario, strings.Join(pb.Violations, "; "))
		})
	}
	if out := os.Getenv("CHRONICLE_RESULTS"); out != "" {
		if err := report.WriteVerify(out, v); err != nil {
			t.Fatalf("write results: %v", err)
		}
		t.Logf("wrote %s/verify.md: %s", out, verify.Summary(v))
	}
}

func countFaults(t *testing.T, name string, smoke bool) int {
	t.Helper()
	s, err := scenario.Load(name, smoke)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range s.Nemesis {
		n += f.Count
	}
	return n
}
