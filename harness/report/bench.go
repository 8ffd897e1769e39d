package report

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// WriteBench writes dir/bench.md, which presents b, and the plots it
// shows under dir/plots/:
//
//   - <name>-throughput.png and <name>-latency.png for a scenario with a Series;
//   - <name>-latency-distribution.png for one with a Distribution (or, in a
//     record not yet written, Latencies: summarised as results.WriteBench
//     does, so the record and its JSON draw the same plot);
//   - <name>-search.png for a rate search (Steps).
//
// A plot without any finite data point is not written (nor linked). Plots
// of scenarios no longer in b are left alone. b itself is not modified.
func WriteBench(dir string, b results.Bench) error {
	b = results.Summarised(b)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	plots := map[string][]plotLink{}
	for _, s := range b.Scenarios {
		links, err := writeScenarioPlots(dir, b.Header, s)
		if err != nil {
			return err
		}
		plots[s.Name] = links
	}
	return results.WriteFile(filepath.Join(dir, "bench.md"), benchMarkdown(b, plots))
}

type plotLink struct{ alt, rel string }

func writeScenarioPlots(dir string, h results.Header, s results.Scenario) ([]plotLink, error) {
	type job struct {
		what   string
		suffix string
		draw   func() ([]byte, error)
	}
	var jobs []job
	if len(s.Series) > 0 {
		jobs = append(jobs,
			job{"throughput over time", "throughput", func() ([]byte, error) { return plotThroughput(h, s.Name, s.Series) }},
			job{"latency over time", "latency", func() ([]byte, error) { return plotLatency(h, s.Name, s.Series) }})
	}
	if s.Distribution != nil {
		jobs = append(jobs, job{"request latency distribution", "latency-distribution",
			func() ([]byte, error) { return plotDistribution(h, s.Name, s.Distribution) }})
	}
	if len(s.Steps) > 0 {
		jobs = append(jobs, job{"rate search", "search",
			func() ([]byte, error) { return plotSearch(h, s.Name, s.Steps, s.SearchBoundMS) }})
	}
	var links []plotLink
	for _, j := range jobs {
		data, err := j.draw()
		if errors.Is(err, errNoData) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("report: %s %s plot: %w", s.Name, j.suffix, err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "plots"), 0o755); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		rel := "plots/" + fileName(s.Name) + "-" + j.suffix + ".png"
		if err := results.WriteFile(filepath.Join(dir, filepath.FromSlash(rel)), data); err != nil {
			return nil, err
		}
		links = append(links, plotLink{alt: s.Name + ": " + j.what, rel: rel})
	}
	return links, nil
}

func verdict(s results.Scenario) string {
	switch {
	case s.Skipped != "":
		return "**SKIPPED, not measured** (" + esc(s.Skipped) + ")"
	case s.Error != "":
		return "**INVALID** (run failed)"
	case !s.Valid:
		return "**INVALID**"
	}
	return "valid"
}

func sectionTitle(s results.Scenario) string { return "Scenario: " + s.Name }

func scenarioLink(s results.Scenario) string {
	return "[" + esc(s.Name) + "](#" + anchor(sectionTitle(s)) + ")"
}

func benchMarkdown(b results.Bench, plots map[string][]plotLink) []byte {
	var md mdWriter
	md.documentHead("ChronicleWeaver benchmarks", "`bench.json`", b.Header)

	md.heading(2, "Summary")
	md.para("Events/s: acknowledged event copies per second (a duplicate sent twice counts twice). " +
		"Stored/s: distinct events committed per second, from the first request to the last commit. " +
		"Req/s: completed requests per second. HTTP: request latency at the load generator. " +
		"Commit: from publish to the row committed in PostgreSQL. CPU and RSS: the service processes. " +
		"Latencies in ms; a dash means not measured.")
	t, invalid := summaryTable(b.Scenarios, true, scenarioLink)
	md.table(t)
	if len(invalid) > 0 {
		md.para("**INVALID runs: %s.** Their figures are not results; see each section for what the checker reported.",
			strings.Join(invalid, ", "))
	}
	var missed []string
	for _, s := range b.Scenarios {
		if s.MissedBound() {
			missed = append(missed, scenarioLink(s))
		}
	}
	if len(missed) > 0 {
		md.para("**Latency bound missed** even at the lowest rate of the search: %s. No rate passed on this machine; "+
			"the figures are those of the lowest step, and the checker's verdict (Valid) stands on its own.",
			strings.Join(missed, ", "))
	}

	for _, s := range b.Scenarios {
		writeBenchScenario(&md, s, plots[s.Name])
	}
	return md.bytes()
}

// summaryTable has a row per scenario: link(s), its mode, its measures
// (HTTP max too when withMax; dashes when it has none) and its verdict.
// invalid are the links of the scenarios that are not valid.
func summaryTable(scenarios []results.Scenario, withMax bool, link func(results.Scenario) string) (t table, invalid []string) {
	t.head = []string{"Scenario", "Mode", "Events/s", "Stored/s", "Req/s", "HTTP p50", "HTTP p95", "HTTP p99"}
	if withMax {
		t.head = append(t.head, "HTTP max")
	}
	t.head = append(t.head, "Commit p50", "Commit p99", "CPU s", "Peak RSS MiB", "Valid")
	t.align = "ll" + strings.Repeat("r", len(t.head)-3) + "l"
	for _, s := range scenarios {
		row := []string{link(s), esc(orDash(s.Mode))}
		if p := s.Perf; p != nil {
			row = append(row, fmtRate(p.EventsPerSec), fmtRate(p.RowsPerSec), fmtReqRate(p.RequestsPerSec),
				fmtPct(p.HTTP, p.HTTP.P50), fmtPct(p.HTTP, p.HTTP.P95), fmtPct(p.HTTP, p.HTTP.P99))
			if withMax {
				row = append(row, fmtPct(p.HTTP, p.HTTP.Max))
			}
			row = append(row, fmtPct(p.Commit, p.Commit.P50), fmtPct(p.Commit, p.Commit.P99),
				fixed(p.CPUSeconds, 1), fixed(p.PeakRSSMiB, 1))
		} else {
			for len(row) < len(t.head)-1 {
				row = append(row, dash)
			}
		}
		row = append(row, verdict(s))
		t.add(row...)
		if verdict(s) != "valid" {
			invalid = append(invalid, link(s))
		}
	}
	return t, invalid
}

func writeScenarioIntro(md *mdWriter, s results.Scenario) {
	md.heading(2, esc(sectionTitle(s)))
	md.para("Kind %s, mode %s, run folder %s.", codeSpan(s.Kind), codeSpan(s.Mode), codeSpan(s.RunDir))
	if d := strings.TrimSpace(s.Description); d != "" {
		md.para("%s", esc(d))
	}
	if verdict(s) == "valid" {
		md.para("Verdict: valid (the checker found no violation).")
		return
	}
	md.para("Verdict: %s", verdict(s))
	var items []string
	if s.Error != "" {
		items = append(items, "run error: "+esc(s.Error))
	}
	for _, v := range s.AllViolations() {
		items = append(items, esc(v))
	}
	if len(items) == 0 {
		items = append(items, "no violation recorded")
	}
	md.bullets(items)
}

func writeBenchScenario(md *mdWriter, s results.Scenario, plots []plotLink) {
	writeScenarioIntro(md, s)
	if p := s.Perf; p != nil {
		md.heading(3, "Measures")
		t := table{head: []string{"Measure", "Value"}, align: "lr"}
		t.add("Duration, first request sent to last answer (s)", fmtSec(p.Seconds))
		t.add("Requests completed", fmtCount(p.Requests))
		t.add("Requests/s", fmtReqRate(p.RequestsPerSec))
		t.add("Event copies acknowledged", fmtCount(p.EventsAcked))
		t.add("Acknowledged events/s", fmtRate(p.EventsPerSec))
		t.add("Distinct events stored", fmtCount(p.RowsStored))
		t.add("Stored events/s (first request to last commit)", fmtRate(p.RowsPerSec))
		t.add("First request to last commit (s)", fmtSec(p.FirstToLastCommit))
		t.add("Error rate (non-2xx or failed requests)", fmtPercent(p.ErrorRate))
		t.add("Service CPU (s)", fixed(p.CPUSeconds, 1))
		t.add("Service peak RSS (MiB)", fixed(p.PeakRSSMiB, 1))
		md.table(t)

		md.heading(3, "Latency")
		lt := table{head: []string{"Latency (ms)", "Samples", "p50", "p90", "p95", "p99", "max"}, align: "lrrrrrr"}
		for _, r := range []struct {
			name string
			p    results.Percentiles
		}{{"HTTP request", p.HTTP}, {"Publish to commit", p.Commit}} {
			lt.add(r.name, fmtCount(int64(r.p.N)), fmtPct(r.p, r.p.P50), fmtPct(r.p, r.p.P90), fmtPct(r.p, r.p.P95),
				fmtPct(r.p, r.p.P99), fmtPct(r.p, r.p.Max))
		}
		md.table(lt)
	}
	writeCheckTable(md, s)

	if len(s.Steps) > 0 {
		md.heading(3, "Rate search")
		t := table{head: []string{"Offered req/s", "Achieved req/s", "Events/s", "HTTP p50", "HTTP p99", "p99 from send", "HTTP max",
			"Send lag p99", "Send lag max", "Generator CPU µs/req", "Service CPU µs/req", "Backlog growth", "Error rate", "Pass"},
			align: "rrrrrrrrrrrrrl"}
		for _, st := range s.Steps {
			t.add(fmtReqRate(st.Rate), fmtReqRate(st.Achieved), fmtRate(st.EventsPerSec),
				fmtPct(st.HTTP, st.HTTP.P50), fmtPct(st.HTTP, st.HTTP.P99), optMS(st.HTTPFromSendP99), fmtPct(st.HTTP, st.HTTP.Max),
				optMS(st.SendLagP99), fixed(st.SendLagMax, 2), optFixed(st.GeneratorCPUPerRequestUS, 1), optFixed(st.ServiceCPUPerRequestUS, 1),
				fmtCount(st.BacklogGrowth), fmtPercent(st.ErrorRate), stepPass(st))
		}
		md.table(t)
		md.para("Latencies in ms. HTTP p99 is from each request's scheduled send (no coordinated omission); p99 from send " +
			"starts when the request actually left, so the difference is the generator's own lateness (send lag). " +
			"Generator CPU: the harness process (the load generator and its history) per request sent; service CPU: the service processes per request sent. " +
			"A step marked generator-limited missed the schedule because of the generator: from the actual send the target held the bound " +
			"with no error and no backlog; it is not counted as the target's failure.")
		writeSearchOutcome(md, s)
	}
	if len(s.Ceilings) > 0 {
		writeCeilings(md, s)
	}

	if bl := s.Baseline; bl != nil {
		md.heading(3, "Baseline: the same events straight into PostgreSQL")
		t := table{head: []string{"Measure", "Value"}, align: "lr"}
		t.add("Events inserted", fmtCount(bl.Events))
		t.add("Seconds", fmtSec(bl.Seconds))
		t.add("Events/s", fmtRate(bl.EventsPerSec))
		t.add("Service / raw PostgreSQL (events/s)", fmtRatio(bl.Ratio))
		md.table(t)
	}

	if len(s.Published) > 0 {
		writeVersusOriginal(md, s)
	}

	if len(plots) > 0 {
		md.heading(3, "Plots")
		var imgs []string
		for _, l := range plots {
			imgs = append(imgs, "!["+esc(l.alt)+"]("+l.rel+")")
		}
		md.block(strings.Join(imgs, "\n\n"))
	}
}

func writeCheckTable(md *mdWriter, s results.Scenario) {
	c := s.Check
	md.heading(3, "Checker")
	t := table{head: []string{"Attempted", "Acknowledged", "Stored", "Lost", "Duplicated", "Unexpected", "Recovered", "Stats exact", "Audit exact"},
		align: "rrrrrrrll"}
	t.add(fmtCount(int64(c.Attempted)), fmtCount(int64(c.Acknowledged)), fmtCount(int64(c.Stored)),
		fmtCount(int64(c.Lost)), fmtCount(int64(c.Duplicated)), fmtCount(int64(c.Unexpected)), fmtCount(int64(c.Recovered)),
		exactCell(c, checker.CheckStatsExact, c.StatsExact), exactCell(c, checker.CheckAuditExact, c.AuditExact))
	md.table(t)
	md.para("Distinct keys. Copies: %s attempted, %s acknowledged, %s failed, %s unknown. Requests: %s ok, %s failed, %s unknown.",
		fmtCount(c.AttemptedCopies), fmtCount(c.AcknowledgedCopies), fmtCount(c.FailedCopies), fmtCount(c.UnknownCopies),
		fmtCount(int64(c.Requests.OK)), fmtCount(int64(c.Requests.Fail)), fmtCount(int64(c.Requests.Info)))
}

// writeSearchOutcome states a rate search's highest passing rate, or that
// no rate passed when it has steps, with the bound.
func writeSearchOutcome(md *mdWriter, s results.Scenario) {
	bound := ""
	if s.SearchBoundMS > 0 {
		bound = " (bound: HTTP p99 at most " + fmtMS(s.SearchBoundMS) + " ms, no backlog growth)"
	}
	if n := len(s.Steps); n > 0 && s.Steps[n-1].GeneratorLimited {
		last := s.Steps[n-1]
		defer md.para("The search stopped at %s requests/s because the load generator, not the target, missed the schedule "+
			"(send lag p99 %s ms, generator CPU %s µs per request): the target's limit lies above it.",
			fmtReqRate(last.Rate), fixed(last.SendLagP99, 2), fixed(last.GeneratorCPUPerRequestUS, 1))
	}
	if s.BestRate > 0 {
		md.para("Highest passing rate: %s requests/s%s.", fmtReqRate(s.BestRate), bound)
	} else if s.MissedBound() {
		md.para("No rate passed%s: even the lowest step, %s requests/s, missed it. The measured run is that step.",
			bound, fmtReqRate(s.Steps[0].Rate))
	}
}

// publishedRow maps a published figure's key (scenario YAML) to ours.
type publishedRow struct {
	key, label string
	ours       func(*results.Perf) float64
	format     func(float64) string
}

// publishedRows are the published figures a scenario's section compares.
var publishedRows = []publishedRow{
	{"events_per_second", "Events/s", func(p *results.Perf) float64 { return p.EventsPerSec }, fmtRate},
	{"p50_ms", "HTTP p50 (ms)", func(p *results.Perf) float64 { return p.HTTP.P50 }, fmtMS},
	{"p90_ms", "HTTP p90 (ms)", func(p *results.Perf) float64 { return p.HTTP.P90 }, fmtMS},
	{"p95_ms", "HTTP p95 (ms)", func(p *results.Perf) float64 { return p.HTTP.P95 }, fmtMS},
	{"max_ms", "HTTP max (ms)", func(p *results.Perf) float64 { return p.HTTP.Max }, fmtMS},
	{"error_rate", "Error rate", func(p *results.Perf) float64 { return p.ErrorRate }, fmtPercent},
}

// cells are s's published figure, ours and the ratio ours / published,
// formatted, a dash where one is missing.
func (r publishedRow) cells(s results.Scenario) (orig, ours, ratio string) {
	published, ok := s.Published[r.key]
	var measured float64
	if s.Perf != nil {
		measured = r.ours(s.Perf)
	}
	return versusCells(published, ok, measured, s.Perf != nil, r.format)
}

// versusCells are a published figure, ours and the ratio ours / published,
// formatted, a dash where one is missing.
func versusCells(published float64, hasPublished bool, ours float64, hasOurs bool, format func(float64) string) (publishedS, oursS, ratioS string) {
	publishedS, oursS, ratioS = dash, dash, dash
	if hasPublished {
		publishedS = format(published)
	}
	if hasOurs {
		oursS = format(ours)
		if hasPublished {
			ratioS = fmtRatio(ratio(ours, published))
		}
	}
	return publishedS, oursS, ratioS
}

// unknownKeys are the keys of published that known lacks, sorted.
func unknownKeys(published map[string]float64, known map[string]bool) []string {
	var keys []string
	for k := range published {
		if !known[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func writeVersusOriginal(md *mdWriter, s results.Scenario) {
	md.heading(3, "Ours vs the original")
	t := table{head: []string{"Measure", "Original (published)", "Ours", "Ratio (ours / original)"}, align: "lrrr"}
	known := map[string]bool{}
	for _, r := range publishedRows {
		known[r.key] = true
		origS, oursS, ratioS := r.cells(s)
		t.add(r.label, origS, oursS, ratioS)
	}
	extra := unknownKeys(s.Published, known)
	for _, k := range extra {
		t.add(code(k), fixed(s.Published[k], 2), dash, dash)
	}
	md.table(t)
	if len(extra) > 0 {
		md.para("Published figures without a counterpart here are listed by their key.")
	}
}

// stepPass is a search step's verdict cell: yes, no, or no with the
// generator named when it, not the target, missed the schedule.
func stepPass(st results.Step) string {
	switch {
	case st.Pass:
		return "yes"
	case st.GeneratorLimited:
		return "no: generator-limited"
	}
	return "no"
}

// optMS is a latency in ms, a dash for 0 (a record without it).
func optMS(ms float64) string {
	if ms == 0 {
		return dash
	}
	return fmtMS(ms)
}

// optFixed is v with d decimals, a dash for 0 (not measured).
func optFixed(v float64, d int) string {
	if v == 0 {
		return dash
	}
	return fixed(v, d)
}

// ceilingWhat says what each ceiling measures.
var ceilingWhat = map[string]string{
	results.CeilingHTTP:   "HTTP: the same generator against a null handler in the harness (200, no work)",
	results.CeilingAppend: "Append: the service's append path alone (queue.Append on the run's Redis from the harness; no HTTP, no workers)",
}

// writeCeilings is the table of a search's ceilings, with the search's
// best rate as a share of each.
func writeCeilings(md *mdWriter, s results.Scenario) {
	md.heading(3, "Ceilings in the same run")
	t := table{head: []string{"Ceiling", "Highest passing req/s", "p99 there", "Generator CPU µs/req there", "Steps", esc(s.Name) + " / ceiling"},
		align: "lrrrrr"}
	for _, c := range s.Ceilings {
		what := ceilingWhat[c.Name]
		if what == "" {
			what = code(c.Name)
		}
		if c.NotMeasured != "" || c.Error != "" {
			why := c.NotMeasured
			if c.Error != "" {
				why = "error: " + c.Error
			}
			t.add(esc(what), "not measured: "+esc(why), dash, dash, fmtCount(int64(len(c.Steps))), dash)
			continue
		}
		best, p99, cpu, r := dash, dash, dash, dash
		for _, st := range c.Steps {
			if st.Pass && st.Rate == c.BestRate {
				p99, cpu = fmtPct(st.HTTP, st.HTTP.P99), optFixed(st.GeneratorCPUPerRequestUS, 1)
			}
		}
		if c.BestRate == 0 && len(c.Steps) > 0 {
			// None passed: the lowest step's figures say by how much.
			st := c.Steps[0]
			best = "none (" + fmtReqRate(st.Rate) + " missed)"
			p99, cpu = fmtPct(st.HTTP, st.HTTP.P99), optFixed(st.GeneratorCPUPerRequestUS, 1)
		}
		if c.BestRate > 0 {
			best = fmtReqRate(c.BestRate)
			if c.AtLeast() {
				best = "≥ " + best
			}
			r = fmtRatio(ratio(s.BestRate, c.BestRate))
			if c.AtLeast() {
				r = "≤ " + r
			}
		}
		t.add(esc(what), best, p99, cpu, fmtCount(int64(len(c.Steps))), r)
	}
	md.table(t)
	md.para("Each ceiling steps its rate from the search's highest passing rate up by the search's factor, under the same bound (p99 from the scheduled send, no errors, the rate achieved), until a step misses it. " +
		"≥: every step passed, the ceiling lies higher; none: even the lowest step missed, and its figures are shown. The null handler runs in the harness process, so the generator CPU at the HTTP ceiling includes it; the append ceiling's CPU is the harness's, calling queue.Append.")
}
