package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// WriteVerify writes dir/verify.md: one row per scenario, the planted bugs
// and whether they were caught, the property tests, then each scenario's
// checker figures and faults.
func WriteVerify(dir string, v results.Verify) error {
	return writeMarkdown(dir, "verify.md", verifyMarkdown(v))
}

// Lengths of shortened texts in tables.
const (
	violationsLen = 160
	exampleLen    = 120
)

func faultCount(s results.Scenario) string {
	failed := 0
	for _, f := range s.Faults {
		if f.Error != "" {
			failed++
		}
	}
	n := fmtCount(int64(len(s.Faults)))
	if failed > 0 {
		n += fmt.Sprintf(" (**%d failed**)", failed)
	}
	return n
}

func verifyMarkdown(v results.Verify) []byte {
	var md mdWriter
	md.documentHead("ChronicleWeaver verification", "`verify.json`", v.Header)

	md.heading(2, "Scenarios")
	md.para("Keys are distinct (topic, event_id) pairs. Lost: acknowledged, not stored. Duplicated: stored more than once. " +
		"Unexpected: stored but never attempted, or only in definitely failed requests. Recovered: outcome unknown, stored. " +
		"To ready: from a fault's heal to every service answering /ready; drain: from the end of the load to an empty queue.")
	t := table{
		head: []string{"Scenario", "Mode", "Faults", "Attempted", "Acknowledged", "Lost", "Duplicated", "Unexpected", "Recovered",
			"Stats exact", "Audit exact", "Max to ready (s)", "Drain (s)", "Verdict", "Run folder"},
		align: "llrrrrrrrllrrll",
	}
	var invalid []string
	for _, s := range v.Scenarios {
		c := s.Check
		toReady := dash
		if len(s.Faults) > 0 {
			toReady = fmtSec(s.MaxToReady)
		}
		t.add(scenarioLink(s), esc(orDash(s.Mode)), faultCount(s),
			fmtCount(int64(c.Attempted)), fmtCount(int64(c.Acknowledged)), fmtCount(int64(c.Lost)),
			fmtCount(int64(c.Duplicated)), fmtCount(int64(c.Unexpected)), fmtCount(int64(c.Recovered)),
			exactCell(c, checker.CheckStatsExact, c.StatsExact), exactCell(c, checker.CheckAuditExact, c.AuditExact), toReady, fmtSec(s.DrainTime), verdict(s), code(s.RunDir))
		if verdict(s) != "valid" {
			invalid = append(invalid, scenarioLink(s))
		}
	}
	md.table(t)
	switch {
	case len(v.Scenarios) == 0:
		md.para("No scenario was run.")
	case len(invalid) > 0:
		md.para("**INVALID: %s.** See each scenario below for what the checker reported.", strings.Join(invalid, ", "))
	default:
		md.para("All %s scenarios valid.", fmtCount(int64(len(v.Scenarios))))
	}

	md.heading(2, "Planted bugs")
	if len(v.PlantedBugs) == 0 {
		md.para("No planted bug was run.")
	} else {
		md.para("Each row switches one bug on in the service and runs the scenario that should expose it; " +
			"the checker must report a violation.")
		bt := table{head: []string{"Bug", "What it is", "Scenario that should catch it", "Caught", "What the checker reported"},
			align: "lllll"}
		missed := addPlantedRows(&bt, v.PlantedBugs, violationsLen)
		md.table(bt)
		caught := len(v.PlantedBugs) - len(missed)
		if len(missed) > 0 {
			md.para("**%d of %d planted bugs caught; NOT caught: %s.**", caught, len(v.PlantedBugs), strings.Join(missed, ", "))
		} else {
			md.para("%d of %d planted bugs caught.", caught, len(v.PlantedBugs))
		}
	}

	if len(v.Properties) > 0 {
		md.heading(2, "Property tests")
		pt := table{head: []string{"Property", "Bug", "Checks", "Failed", "Shrunk steps", "Example"}, align: "llrlrl"}
		for _, p := range v.Properties {
			c := propertyCellsOf(p)
			if p.ShrunkSteps > 0 { // shown here even when the run passed
				c.shrunk = fmtCount(int64(p.ShrunkSteps))
			}
			pt.add(esc(p.Property), c.bug, fmtCount(int64(p.Checks)), c.failed, c.shrunk, c.example)
		}
		md.table(pt)
	}

	for _, s := range v.Scenarios {
		writeScenarioIntro(&md, s)
		writeCheckTable(&md, s)
		writeFaults(&md, s)
		writeEffects(&md, s)
	}
	return md.bytes()
}

// addPlantedRows adds a row per planted bug to t (bug, what it is,
// scenario, caught, the violations reported shortened to reportLen runes)
// and returns the bugs not caught, as code spans.
func addPlantedRows(t *table, bugs []results.PlantedBug, reportLen int) (missed []string) {
	for _, b := range bugs {
		reported := dash
		if len(b.Violations) > 0 {
			reported = esc(shorten(strings.Join(b.Violations, "; "), reportLen))
		}
		t.add(code(b.Bug), esc(orDash(b.What)), esc(orDash(b.Scenario)), yesNo(b.Caught), reported)
		if !b.Caught {
			missed = append(missed, code(b.Bug))
		}
	}
	return missed
}

// writeEffects lists what the scenario's faults had to provoke and what the
// run showed of it.
func writeEffects(md *mdWriter, s results.Scenario) {
	if len(s.Effects) == 0 {
		return
	}
	md.heading(3, "Effects required")
	t := table{head: []string{"Effect", "What", "Seen", "Shown"}, align: "llrl"}
	for _, f := range s.Effects {
		shown := yesNo(f.Shown)
		if f.Informative {
			shown = "not required: " + esc(shorten(f.NotMeasured, violationsLen))
		} else if f.NotMeasured != "" {
			shown = "**not measured: " + esc(shorten(f.NotMeasured, violationsLen)) + "**"
		} else if !f.Shown {
			shown = "**no**"
		}
		t.add(code(f.Name), esc(f.What), fmtCount(f.Count), shown)
	}
	md.table(t)
}

func writeFaults(md *mdWriter, s results.Scenario) {
	md.heading(3, "Faults")
	if len(s.Faults) == 0 {
		md.para("None injected.")
		return
	}
	var first time.Time
	for _, f := range s.Faults {
		if !f.At.IsZero() && (first.IsZero() || f.At.Before(first)) {
			first = f.At
		}
	}
	t := table{head: []string{"#", "Kind", "Target", "At (s)", "Held (s)", "To ready (s)", "Backlog back (s)", "Error"}, align: "rllrrrrl"}
	for i, f := range s.Faults {
		at := dash
		if !f.At.IsZero() {
			at = fmtSec(f.At.Sub(first).Seconds())
		}
		errS := dash
		if f.Error != "" {
			errS = "**" + esc(shorten(f.Error, violationsLen)) + "**"
		}
		drained := fmtSec(f.ToDrained)
		if f.ToDrained < 0 {
			drained = "not within 60 s"
		}
		kind := orDash(f.Kind)
		if f.During != "" {
			kind += " (during " + f.During + ")"
		}
		t.add(strconv.Itoa(i+1), esc(kind), esc(orDash(f.Target)), at, fmtSec(f.Held), fmtSec(f.ToReady), drained, errS)
	}
	md.table(t)
	if !first.IsZero() {
		md.para("At: seconds since the first fault (%s).", first.UTC().Format(time.RFC3339Nano))
	}
}
