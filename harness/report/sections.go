package report

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// The section renderers of REPORT.md: what each generated section says,
// from the records under results/ (see document.go for how sections are
// placed in the document).

// SectionNames are the generated sections Sections renders, in the order
// the report is expected to use them.
var SectionNames = []string{
	"provenance", "bench-summary", "original", "peers", "throughput", "single-events", "stress-20k",
	"scaling", "aof", "upsert", "verify", "planted", "properties", "figures",
}

// Sections renders every generated section (keyed by the names in
// SectionNames) from in. The same inputs always give the same bytes.
func Sections(in Inputs) map[string]string {
	d := docCtx{in: in, resultsDir: in.ResultsDir}
	if d.resultsDir == "" {
		d.resultsDir = "results"
	}
	return map[string]string{
		"provenance":    d.provenance(),
		"bench-summary": d.benchSummary(),
		"original":      d.original(),
		"peers":         d.peers(),
		"throughput":    d.search("throughput"),
		"single-events": d.search("single-events"),
		"stress-20k":    d.stress(),
		"scaling":       d.scaling(),
		"aof":           d.aof(),
		"upsert":        d.upsert(),
		"verify":        d.verify(),
		"planted":       d.planted(),
		"properties":    d.properties(),
		"figures":       d.figures(),
	}
}

// docCtx renders sections; resultsDir is the link path to results/.
type docCtx struct {
	in         Inputs
	resultsDir string
}

func (d docCtx) file(name string) string { return path.Join(d.resultsDir, name) }

// missing is the notice for a results file that does not exist.
func (d docCtx) missing(name string) string {
	return fmt.Sprintf("_No %s yet: %s writes it._", codeSpan(d.file(name)), codeSpan(makers[name]))
}

// noScenario is the notice for a bench scenario absent from bench.json.
func (d docCtx) noScenario(name string) string {
	return fmt.Sprintf("_No scenario %s in %s: %s runs it._", codeSpan(name), codeSpan(d.file("bench.json")), codeSpan(makers["bench.json"]))
}

func (d docCtx) benchScenario(name string) *results.Scenario {
	if d.in.Bench == nil {
		return nil
	}
	for i := range d.in.Bench.Scenarios {
		if d.in.Bench.Scenarios[i].Name == name {
			return &d.in.Bench.Scenarios[i]
		}
	}
	return nil
}

// link is a link to a scenario's section in bench.md or verify.md.
func (d docCtx) link(s results.Scenario, doc string) string {
	return "[" + esc(s.Name) + "](" + d.file(doc) + "#" + anchor(sectionTitle(s)) + ")"
}

// notes flags runs whose figures are not (full) results.
func (d docCtx) notes(md *mdWriter, ss ...*results.Scenario) {
	for _, s := range ss {
		if s == nil {
			continue
		}
		if v := verdict(*s); v != "valid" {
			md.para("**%s is INVALID: its figures are not results** (see %s).", esc(s.Name), d.link(*s, "bench.md"))
		}
		if s.Mode == "smoke" {
			md.para("_%s ran in smoke mode (a few seconds): its figures are not a measurement._", esc(s.Name))
		}
		if s.Perf == nil && s.Error == "" {
			md.para("_%s recorded no measures._", esc(s.Name))
		}
	}
}

func (d docCtx) provenance() string {
	var md mdWriter
	type src struct {
		name string
		h    *results.Header
	}
	var present []src
	var notices []string
	if d.in.Bench != nil {
		present = append(present, src{"bench.json", &d.in.Bench.Header})
	} else {
		notices = append(notices, d.missing("bench.json"))
	}
	if d.in.Verify != nil {
		present = append(present, src{"verify.json", &d.in.Verify.Header})
	} else {
		notices = append(notices, d.missing("verify.json"))
	}
	if len(present) > 0 {
		t := table{head: []string{"Field"}, align: "l"}
		rows := make([][][2]string, len(present))
		for i, p := range present {
			t.head = append(t.head, code(d.file(p.name)))
			t.align += "l"
			rows[i] = headerRows(*p.h)
		}
		for r := range rows[0] {
			cells := []string{rows[0][r][0]}
			for i := range present {
				v := rows[i][r][1]
				switch rows[i][r][0] {
				case "Commit", "Command", "Settings":
					v = code(v)
				default:
					v = esc(v)
				}
				cells = append(cells, v)
			}
			t.add(cells...)
		}
		md.table(t)
	}
	for _, n := range notices {
		md.para("%s", n)
	}
	if r := d.in.Repo; r != nil {
		md.para("Repository, as measured into %s by %s:", codeSpan(d.file("repo.json")), codeSpan(makers["repo.json"]))
		t := table{head: []string{"Measure", "Value"}, align: "lr"}
		t.add("Commit", code(orDash(r.Commit)))
		t.add("Go files", fmtCount(int64(r.GoFiles)))
		t.add("Lines of Go", fmtCount(int64(r.GoLines)))
		t.add("Test files (`*_test.go`)", fmtCount(int64(r.TestFiles)))
		t.add("Test, benchmark and fuzz functions", fmtCount(int64(r.TestFuncs)))
		md.table(t)
	} else {
		md.para("%s", d.missing("repo.json"))
	}
	return string(md.bytes())
}

func (d docCtx) benchSummary() string {
	if d.in.Bench == nil {
		return d.missing("bench.json")
	}
	var md mdWriter
	if len(d.in.Bench.Scenarios) == 0 {
		md.para("_%s holds no scenario._", codeSpan(d.file("bench.json")))
		return string(md.bytes())
	}
	t, invalid := summaryTable(d.in.Bench.Scenarios, false, func(s results.Scenario) string { return d.link(s, "bench.md") })
	md.table(t)
	md.para("Latencies in ms (HTTP: at the load generator; commit: publish to row committed); a dash means not measured. "+
		"Details per scenario in [%s](%s).", esc(d.file("bench.md")), d.file("bench.md"))
	if len(invalid) > 0 {
		md.para("**INVALID runs: %s.** Their figures are not results.", strings.Join(invalid, ", "))
	}
	return string(md.bytes())
}

// originalRows are the original design's published figures (a bench
// scenario's `published:` keys) and our counterparts: those a bench.md
// section compares, and two more.
var originalRows = append(slices.Clip(publishedRows),
	publishedRow{"events_total", "Events acknowledged", func(p *results.Perf) float64 { return float64(p.EventsAcked) }, fixed0},
	publishedRow{"seconds_total", "Duration (s)", func(p *results.Perf) float64 { return p.Seconds }, fmtSec},
)

func fixed0(v float64) string { return fixed(v, 0) }

// testFilesKey is the published key of the original's number of test files.
const testFilesKey = "test_files"

func (d docCtx) original() string {
	if d.in.Bench == nil {
		return d.missing("bench.json")
	}
	var md mdWriter
	t := table{head: []string{"Measure", "Original (published)", "Ours", "Ratio (ours / original)"}, align: "lrrr"}
	known := map[string]bool{testFilesKey: true}
	for _, r := range originalRows {
		known[r.key] = true
	}
	var withPublished []*results.Scenario
	origTests, hasOrigTests := 0.0, false
	for i := range d.in.Bench.Scenarios {
		s := &d.in.Bench.Scenarios[i]
		if len(s.Published) == 0 {
			continue
		}
		withPublished = append(withPublished, s)
		if v, ok := s.Published[testFilesKey]; ok && !hasOrigTests {
			origTests, hasOrigTests = v, true
		}
		for _, r := range originalRows {
			if _, ok := s.Published[r.key]; ok {
				origS, oursS, ratioS := r.cells(*s)
				t.add(r.label+" ("+esc(s.Name)+")", origS, oursS, ratioS)
			}
		}
		for _, k := range unknownKeys(s.Published, known) {
			t.add(code(k)+" ("+esc(s.Name)+")", fixed(s.Published[k], 2), dash, dash)
		}
	}
	if hasOrigTests || d.in.Repo != nil {
		var ours float64
		if d.in.Repo != nil {
			ours = float64(d.in.Repo.TestFiles)
		}
		origS, oursS, ratioS := versusCells(origTests, hasOrigTests, ours, d.in.Repo != nil, fixed0)
		t.add("Test files", origS, oursS, ratioS)
	}
	if len(t.rows) == 0 {
		md.para("_No published figures of the original in %s (a scenario file's %s keys)._",
			codeSpan(d.file("bench.json")), codeSpan("published:"))
	} else {
		md.table(t)
		ours := codeSpan(d.file("bench.json"))
		if d.in.Repo != nil {
			ours += " and " + codeSpan(d.file("repo.json"))
		}
		md.para("Original: the figures published with the original design, as recorded in the scenario files. "+
			"Ours: %s. A ratio above one means ours is higher (better for events/s, worse for latencies).", ours)
	}
	d.notes(&md, withPublished...)
	if d.in.Repo == nil {
		md.para("%s", d.missing("repo.json"))
	}
	return string(md.bytes())
}

// scenarioSection renders a section on bench scenario name: the notes on
// its run, then what body writes. Without bench.json or the scenario it is
// a notice.
func (d docCtx) scenarioSection(name string, body func(md *mdWriter, s *results.Scenario)) string {
	if d.in.Bench == nil {
		return d.missing("bench.json")
	}
	s := d.benchScenario(name)
	if s == nil {
		return d.noScenario(name)
	}
	var md mdWriter
	d.notes(&md, s)
	body(&md, s)
	return string(md.bytes())
}

// comparison renders a section comparing the bench scenarios names: what
// body writes about those found (when any is), the notes on their runs,
// then a notice per scenario not found. Without bench.json it is a notice.
func (d docCtx) comparison(names []string, body func(md *mdWriter, found []*results.Scenario)) string {
	if d.in.Bench == nil {
		return d.missing("bench.json")
	}
	found, notices := d.present(names...)
	var md mdWriter
	if len(found) > 0 {
		body(&md, found)
	}
	d.notes(&md, found...)
	for _, n := range notices {
		md.para("%s", n)
	}
	return string(md.bytes())
}

func (d docCtx) search(name string) string {
	return d.scenarioSection(name, writeSearch)
}

// writeSearch writes a rate search's steps and outcome, its measured run
// and its baseline.
func writeSearch(md *mdWriter, s *results.Scenario) {
	if len(s.Steps) > 0 {
		t := table{head: []string{"Offered req/s", "Achieved req/s", "Events/s", "HTTP p99 (ms)", "Backlog growth", "Pass"}, align: "rrrrrl"}
		for _, st := range s.Steps {
			t.add(fmtReqRate(st.Rate), fmtReqRate(st.Achieved), fmtRate(st.EventsPerSec), fmtPct(st.HTTP, st.HTTP.P99),
				fmtCount(st.BacklogGrowth), stepPass(st))
		}
		md.table(t)
	} else {
		md.para("_%s recorded no rate-search step._", esc(s.Name))
	}
	writeSearchOutcome(md, *s)
	if p := s.Perf; p != nil {
		if s.BestRate > 0 {
			md.para("The measured run, at the highest passing rate:")
		} else {
			md.para("The measured run:")
		}
		t := table{head: []string{"Measure", "Value"}, align: "lr"}
		t.add("Duration, first request sent to last answer (s)", fmtSec(p.Seconds))
		t.add("Requests/s", fmtReqRate(p.RequestsPerSec))
		t.add("Event copies acknowledged", fmtCount(p.EventsAcked))
		t.add("Acknowledged events/s", fmtRate(p.EventsPerSec))
		t.add("Distinct events stored", fmtCount(p.RowsStored))
		t.add("First request to last commit (s)", fmtSec(p.FirstToLastCommit))
		t.add("Stored events/s (first request to last commit)", fmtRate(p.RowsPerSec))
		t.add("HTTP p50 / p99 (ms)", fmtPct(p.HTTP, p.HTTP.P50)+" / "+fmtPct(p.HTTP, p.HTTP.P99))
		t.add("Publish to commit p50 / p99 (ms)", fmtPct(p.Commit, p.Commit.P50)+" / "+fmtPct(p.Commit, p.Commit.P99))
		t.add("Error rate", fmtPercent(p.ErrorRate))
		md.table(t)
	}
	if bl := s.Baseline; bl != nil {
		md.para("Baseline: the same events inserted straight into PostgreSQL with the service's batched upsert:")
		t := table{head: []string{"Measure", "Value"}, align: "lr"}
		t.add("Events inserted", fmtCount(bl.Events))
		t.add("Seconds", fmtSec(bl.Seconds))
		t.add("Raw PostgreSQL events/s", fmtRate(bl.EventsPerSec))
		if s.Perf != nil {
			t.add("Service acknowledged events/s", fmtRate(s.Perf.EventsPerSec))
		}
		t.add("Service / raw PostgreSQL (events/s)", fmtRatio(bl.Ratio))
		md.table(t)
	}
}

func (d docCtx) stress() string {
	return d.scenarioSection("stress-20k", func(md *mdWriter, s *results.Scenario) {
		if p := s.Perf; p != nil {
			t := table{head: []string{"Measure", "Value"}, align: "lr"}
			t.add("Event copies acknowledged", fmtCount(p.EventsAcked))
			t.add("Distinct events stored", fmtCount(p.RowsStored))
			t.add("First request to last commit (s)", fmtSec(p.FirstToLastCommit))
			t.add("Acknowledged events/s (first request to last answer)", fmtRate(p.EventsPerSec))
			t.add("Stored events/s (first request to last commit)", fmtRate(p.RowsPerSec))
			md.table(t)
		}
	})
}

// present splits names into the bench scenarios found and a notice per
// name not found.
func (d docCtx) present(names ...string) (found []*results.Scenario, notices []string) {
	for _, n := range names {
		if s := d.benchScenario(n); s != nil {
			found = append(found, s)
		} else {
			notices = append(notices, d.noScenario(n))
		}
	}
	return found, notices
}

func perfOf(s *results.Scenario, f func(*results.Perf) float64) float64 {
	if s == nil || s.Perf == nil {
		return nanValue
	}
	return f(s.Perf)
}

var nanValue = math.NaN()

func events(p *results.Perf) float64      { return p.EventsPerSec }
func httpP50(p *results.Perf) float64     { return p.HTTP.P50 }
func httpP99(p *results.Perf) float64     { return p.HTTP.P99 }
func firstToLast(p *results.Perf) float64 { return p.FirstToLastCommit }

// perfCell formats a measure of s, a dash when s has none (or, for a
// latency, no samples).
func perfCell(s *results.Scenario, f func(*results.Perf) float64, format func(float64) string) string {
	if s == nil || s.Perf == nil {
		return dash
	}
	return format(f(s.Perf))
}

func latencyCell(s *results.Scenario, p func(*results.Perf) results.Percentiles, f func(*results.Perf) float64) string {
	if s == nil || s.Perf == nil {
		return dash
	}
	return fmtPct(p(s.Perf), f(s.Perf))
}

func httpOf(p *results.Perf) results.Percentiles { return p.HTTP }

func (d docCtx) scaling() string {
	return d.comparison([]string{"scale-1", "scale-2", "scale-3"}, func(md *mdWriter, found []*results.Scenario) {
		base := d.benchScenario("scale-1")
		t := table{head: []string{"Scenario", "Instances", "Stored events/s", "Acknowledged events/s", "HTTP p99 (ms)", "CPU s", "Peak RSS MiB", "Speedup (stored events/s vs scale-1)"},
			align: "lrrrrrrr"}
		stored := func(p *results.Perf) float64 { return p.RowsPerSec }
		for _, s := range found {
			inst := dash
			if s.Environment.Services > 0 {
				inst = fmtCount(int64(s.Environment.Services))
			}
			t.add(d.link(*s, "bench.md"), inst, perfCell(s, stored, fmtRate), perfCell(s, events, fmtRate), latencyCell(s, httpOf, httpP99),
				perfCell(s, func(p *results.Perf) float64 { return p.CPUSeconds }, func(v float64) string { return fixed(v, 1) }),
				perfCell(s, func(p *results.Perf) float64 { return p.PeakRSSMiB }, func(v float64) string { return fixed(v, 1) }),
				fmtRatio(ratio(perfOf(s, stored), perfOf(base, stored))))
		}
		md.table(t)
		md.para("Stored events/s: distinct events committed, from the first request to the last commit; acknowledged events/s can be higher while the backlog grows (up to QUEUE_MAX_LEN, after which publishes are refused). CPU s and peak RSS are of the service processes.")
	})
}

func (d docCtx) aof() string {
	return d.comparison([]string{"aof-everysec", "aof-always"}, func(md *mdWriter, found []*results.Scenario) {
		t := table{head: []string{"Scenario", "Redis appendfsync", "Events/s", "HTTP p50 (ms)", "HTTP p99 (ms)"}, align: "llrrr"}
		for _, s := range found {
			t.add(d.link(*s, "bench.md"), code(strings.TrimPrefix(s.Name, "aof-")), perfCell(s, events, fmtRate),
				latencyCell(s, httpOf, httpP50), latencyCell(s, httpOf, httpP99))
		}
		md.table(t)
		ev, al := d.benchScenario("aof-everysec"), d.benchScenario("aof-always")
		if ev != nil && al != nil && ev.Perf != nil && al.Perf != nil {
			md.para("Cost of %s (always / everysec): events/s %s, HTTP p50 %s, HTTP p99 %s.", code("appendfsync always"),
				fmtRatio(ratio(perfOf(al, events), perfOf(ev, events))),
				fmtRatio(ratio(perfOf(al, httpP50), perfOf(ev, httpP50))),
				fmtRatio(ratio(perfOf(al, httpP99), perfOf(ev, httpP99))))
		}
	})
}

func (d docCtx) upsert() string {
	return d.comparison([]string{"upsert-unnest", "upsert-copy"}, func(md *mdWriter, found []*results.Scenario) {
		t := table{head: []string{"Scenario", "Method", "Events/s", "First request to last commit (s)", "Stored events/s"}, align: "llrrr"}
		for _, s := range found {
			method := s.Environment.Settings["UPSERT_METHOD"]
			cell := dash
			if method != "" {
				cell = code(method)
			}
			t.add(d.link(*s, "bench.md"), cell, perfCell(s, events, fmtRate), perfCell(s, firstToLast, fmtSec),
				perfCell(s, func(p *results.Perf) float64 { return p.RowsPerSec }, fmtRate))
		}
		md.table(t)
		un, cp := d.benchScenario("upsert-unnest"), d.benchScenario("upsert-copy")
		if un != nil && cp != nil && un.Perf != nil && cp.Perf != nil {
			md.para("copy / unnest: events/s %s, first request to last commit %s.",
				fmtRatio(ratio(perfOf(cp, events), perfOf(un, events))),
				fmtRatio(ratio(perfOf(cp, firstToLast), perfOf(un, firstToLast))))
		}
	})
}

func (d docCtx) verify() string {
	v := d.in.Verify
	if v == nil {
		return d.missing("verify.json")
	}
	var md mdWriter
	if len(v.Scenarios) == 0 {
		md.para("_%s holds no scenario._", codeSpan(d.file("verify.json")))
		return string(md.bytes())
	}
	t := table{
		head: []string{"Scenario", "Mode", "Faults", "Attempted", "Acknowledged", "Lost", "Duplicated", "Unexpected", "Recovered",
			"Stats exact", "Audit exact", "Max to ready (s)", "Verdict"},
		align: "llrrrrrrrllrl",
	}
	var invalid []string
	faults, withFaults, failed := 0, 0, 0
	var longest *results.Scenario
	for i := range v.Scenarios {
		s := &v.Scenarios[i]
		c := s.Check
		toReady := dash
		if len(s.Faults) > 0 {
			toReady = fmtSec(s.MaxToReady)
			faults += len(s.Faults)
			withFaults++
			for _, f := range s.Faults {
				if f.Error != "" {
					failed++
				}
			}
			if longest == nil || s.MaxToReady > longest.MaxToReady {
				longest = s
			}
		}
		t.add(d.link(*s, "verify.md"), esc(orDash(s.Mode)), faultCount(*s),
			fmtCount(int64(c.Attempted)), fmtCount(int64(c.Acknowledged)), fmtCount(int64(c.Lost)),
			fmtCount(int64(c.Duplicated)), fmtCount(int64(c.Unexpected)), fmtCount(int64(c.Recovered)),
			exactCell(c, checker.CheckStatsExact, c.StatsExact), exactCell(c, checker.CheckAuditExact, c.AuditExact), toReady, verdict(*s))
		if verdict(*s) != "valid" {
			invalid = append(invalid, d.link(*s, "verify.md"))
		}
	}
	md.table(t)
	if faults > 0 {
		failedNote := ""
		if failed > 0 {
			failedNote = fmt.Sprintf(" (**%s failed to inject**)", fmtCount(int64(failed)))
		}
		md.para("%s in %s%s; the longest recovery (heal to every service ready) took %s s (%s).",
			plural(faults, "fault"), plural(withFaults, "scenario"), failedNote, fmtSec(longest.MaxToReady), esc(longest.Name))
	} else {
		md.para("No fault was injected.")
	}
	if len(invalid) > 0 {
		md.para("**INVALID: %s.** See [%s](%s) for what the checker reported.", strings.Join(invalid, ", "),
			esc(d.file("verify.md")), d.file("verify.md"))
	} else {
		md.para("All %s valid. Details per scenario in [%s](%s).", plural(len(v.Scenarios), "scenario"),
			esc(d.file("verify.md")), d.file("verify.md"))
	}
	return string(md.bytes())
}

// plural is "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmtCount(int64(n)) + " " + thing + "s"
}

// plantedLen is the length of the checker's report in the planted table.
const plantedLen = 120

func (d docCtx) planted() string {
	v := d.in.Verify
	if v == nil {
		return d.missing("verify.json")
	}
	var md mdWriter
	if len(v.PlantedBugs) == 0 {
		md.para("_%s records no planted-bug run._", codeSpan(d.file("verify.json")))
		return string(md.bytes())
	}
	t := table{head: []string{"Planted bug", "What it is", "Scenario", "Caught", "What the checker reported"}, align: "lllll"}
	missed := addPlantedRows(&t, v.PlantedBugs, plantedLen)
	md.table(t)
	caught := len(v.PlantedBugs) - len(missed)
	if len(missed) > 0 {
		md.para("**%s of %s planted bugs caught; NOT caught: %s.**", fmtCount(int64(caught)), fmtCount(int64(len(v.PlantedBugs))),
			strings.Join(missed, ", "))
	} else {
		md.para("%s of %s planted bugs caught.", fmtCount(int64(caught)), fmtCount(int64(len(v.PlantedBugs))))
	}
	return string(md.bytes())
}

func (d docCtx) properties() string {
	if d.in.Properties == nil {
		return d.missing("properties.json")
	}
	var md mdWriter
	ps := results.SortProperties(d.in.Properties)
	if len(ps) == 0 {
		md.para("_%s holds no property run._", codeSpan(d.file("properties.json")))
		return string(md.bytes())
	}
	t := table{head: []string{"Property", "Bug", "Checks", "Failed", "Verdict", "Shrunk steps", "Example"}, align: "llrllrl"}
	var bad []string
	for _, p := range ps {
		c := propertyCellsOf(p)
		if c.unexpected != "" {
			bad = append(bad, c.unexpected)
		}
		t.add(esc(p.Property), c.bug, fmtCount(int64(p.Checks)), c.failed, c.verdict, c.shrunk, c.example)
	}
	md.table(t)
	if len(bad) > 0 {
		md.para("**Unexpected outcome: %s.**", esc(strings.Join(bad, "; ")))
	} else {
		md.para("Every clean run passed and every planted bug was caught. Counterexamples in full: [%s](%s).",
			esc(d.file("properties.md")), d.file("properties.md"))
	}
	return string(md.bytes())
}

// figureKinds are the plots WriteBench draws for a scenario (file suffix),
// in its order, with a caption.
var figureKinds = []struct{ suffix, alt, caption string }{
	{"throughput", "throughput over time", "throughput over time: acknowledged events/s (top), requests sent and errors per second (bottom)"},
	{"latency", "latency over time", "HTTP request latency over time, p50 and p99"},
	{"latency-distribution", "request latency distribution", "cumulative distribution of HTTP request latency"},
	{"search", "rate search", "rate search: HTTP p99 against the offered rate, with the bound (top); achieved against offered rate (bottom)"},
}

func (d docCtx) figures() string {
	if d.in.Bench == nil {
		return d.missing("bench.json")
	}
	have := map[string]bool{}
	for _, p := range d.in.Plots {
		have[p] = true
	}
	var md mdWriter
	for _, s := range d.in.Bench.Scenarios {
		for _, k := range figureKinds {
			file := fileName(s.Name) + "-" + k.suffix + ".png"
			if !have[file] {
				continue
			}
			rel := d.file("plots/" + file)
			md.para("![%s](%s)", esc(s.Name+": "+k.alt), rel)
			caption := "_" + esc(s.Name) + ": " + esc(k.caption) + "._"
			if s.Mode == "smoke" {
				caption += " _Smoke run._"
			}
			if verdict(s) != "valid" {
				caption += " **INVALID run.**"
			}
			md.para("%s", caption)
		}
	}
	if len(md.bytes()) == 0 {
		return fmt.Sprintf("_No plots in %s yet: %s draws them._", codeSpan(d.file("plots")+"/"), codeSpan(makers["bench.json"]))
	}
	return string(md.bytes())
}

// peers is the comparison of subjects: a row per scenario and subject,
// side by side, from peers.json.
func (d docCtx) peers() string {
	p := d.in.Peers
	if p == nil {
		return d.missing("peers.json")
	}
	var md mdWriter
	var subjects []string
	for _, s := range p.Subjects {
		line := esc(s.Name)
		if !s.Ours {
			line += " (" + esc(orDash(s.Repository)) + ", commit " + subjectCommit(s) + ")"
		}
		if s.Error != "" {
			line += ": **not run: " + esc(shorten(s.Error, 200)) + "**"
		}
		subjects = append(subjects, line)
	}
	md.para("Subjects: %s. Command %s, commit %s, backend %s; the whole comparison took %s s.", strings.Join(subjects, "; "),
		code(p.Header.Command), code(orDash(p.Header.Commit)), esc(orDash(p.Header.Backend)), fmtSec(p.Seconds))
	t := peersTable()
	for _, ps := range p.Scenarios {
		addPeerRows(&t, ps, true)
	}
	md.table(t)
	md.para("Details, the checker's words and the run folders: [%s](%s). A check a subject could not be asked reads %s.",
		esc(d.file("peers.md")), d.file("peers.md"), notMeasured)
	return string(md.bytes())
}
