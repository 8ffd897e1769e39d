package report

import (
	"strings"
	"testing"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// The comparison renders a row per subject, "not measured" where a check
// could not be made (never "yes"), the ratio to the original, the
// published row, and a subject that could not run with its reason.
func TestPeersMarkdown(t *testing.T) {
	ours := results.Scenario{Name: "seed-k6", Subject: "chronicleweaver", Valid: true,
		Check:     checker.Result{Valid: true, StatsExact: true, AuditExact: true},
		Perf:      &results.Perf{EventsPerSec: 300, HTTP: results.Percentiles{N: 1, P99: 2}, CPUSeconds: 1.5, PeakRSSMiB: 20},
		Published: map[string]float64{"events_per_second": 221.13}}
	orig := results.Scenario{Name: "seed-k6", Subject: "original", Valid: true,
		Check:     checker.Result{Valid: true, NotMeasured: []checker.NotMeasured{{Check: checker.CheckAuditExact, Reason: "no audit"}}},
		Perf:      &results.Perf{EventsPerSec: 100, HTTP: results.Percentiles{N: 1, P99: 9}, UsageNotMeasured: "external"},
		Published: map[string]float64{"events_per_second": 221.13}}
	broken := results.Scenario{Name: "seed-k6", Subject: "third", Error: "image did not build: no such package"}
	p := results.Peers{
		Subjects: []results.PeerSubject{{Name: "chronicleweaver", Ours: true},
			{Name: "original", Repository: "visoredkon/DistributedChronicleWeaver", Commit: "0faad9a0123456789", Image: "img:1"},
			{Name: "third", Repository: "x/y", Error: "image did not build: no such package"}},
		Scenarios: []results.PeerScenario{{Name: "seed-k6", Runs: []results.Scenario{ours, orig, broken}}},
	}
	md := string(peersMarkdown(p))
	rows := map[string]string{}
	for _, line := range strings.Split(md, "\n") {
		for _, s := range []string{"chronicleweaver", "original", "original (published)", "third"} {
			if strings.HasPrefix(line, "| seed-k6 | "+s+" |") {
				rows[s] = line
			}
		}
	}
	if r := rows["chronicleweaver"]; !strings.Contains(r, "| 300 |") || !strings.Contains(r, "| 3.00× |") || !strings.Contains(r, "| yes | yes |") {
		t.Errorf("our row: %s", r)
	}
	if r := rows["original"]; !strings.Contains(r, "| not measured | not measured |") || !strings.Contains(r, "| **NO** | not measured |") || !strings.Contains(r, "| 1.00× |") {
		t.Errorf("the original's row (usage and audit not measured, stats not exact): %s", r)
	}
	if r := rows["original (published)"]; !strings.Contains(r, "| 221 |") || !strings.Contains(r, "2.21×") {
		t.Errorf("published row: %s", r)
	}
	if r := rows["third"]; !strings.Contains(r, "not run: image did not build") {
		t.Errorf("a subject that did not run: %s", r)
	}
	for _, want := range []string{"`0faad9a01234`", "**Not run: image did not build", "`audit_exact`: no audit"} {
		if !strings.Contains(md, want) {
			t.Errorf("peers.md lacks %q", want)
		}
	}
}
