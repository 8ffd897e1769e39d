package report

import (
	"fmt"
	"strings"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// The comparison of subjects (results/peers.json -> results/peers.md, and
// REPORT.md's "peers" section): per scenario one row per subject, side by
// side; a check a subject could not be asked is "not measured", never a
// pass.

// notMeasured is the cell of a check or measure that could not be made.
const notMeasured = "not measured"

// originalSubject is the subject the ratio column divides by.
const originalSubject = "original"

// WritePeers writes dir/peers.md.
func WritePeers(dir string, p results.Peers) error {
	return writeMarkdown(dir, "peers.md", peersMarkdown(p))
}

func peersMarkdown(p results.Peers) []byte {
	var md mdWriter
	md.documentHead("ChronicleWeaver against other implementations", "`peers.json`", p.Header)
	md.para("Each scenario ran against every subject in turn (interleaved per scenario), on the same backend, with the same PostgreSQL and Redis "+
		"(Redis with AOF, `appendfsync always`, for every subject) as every run of the harness. The comparison took %s s.", fmtSec(p.Seconds))

	md.heading(2, "Subjects")
	st := table{head: []string{"Subject", "Source", "Commit", "Image", "What it is"}, align: "lllll"}
	for _, s := range p.Subjects {
		src := "this repository"
		commit := "the header's"
		if !s.Ours {
			src = esc(orDash(s.Repository))
			commit = subjectCommit(s)
		}
		img := dash
		if s.Image != "" {
			img = code(s.Image)
			if s.ImageBuilt {
				img += fmt.Sprintf(" (built in %s s)", fmtSec(s.ImageSeconds))
			}
		}
		what := esc(s.Description)
		if s.Error != "" {
			what += " **Not run: " + esc(shorten(s.Error, 300)) + "**"
		}
		st.add(esc(s.Name), src, commit, img, what)
	}
	md.table(st)

	md.heading(2, "Summary")
	md.para("Events/s: acknowledged event copies per second. Stored/s: distinct events committed per second, first request to last commit. " +
		"HTTP latencies at the load generator, in ms. Commit p99: publish to row committed (from the subject's receive time where it records one, " +
		"else from the request's send: marked †). CPU s and peak RSS: the subject's processes, as the harness started them. " +
		"Lost: acknowledged, not stored. Duplicated: stored twice. Unexpected: stored, never sent. " +
		"Events/s ÷ original: the row's events/s over the original's in the same scenario.")
	t := peersTable()
	for _, ps := range p.Scenarios {
		addPeerRows(&t, ps, true)
	}
	md.table(t)

	for _, ps := range p.Scenarios {
		md.heading(2, "Scenario: "+esc(ps.Name))
		for _, r := range ps.Runs {
			writePeerRun(&md, r)
		}
	}
	return md.bytes()
}

// subjectCommit is a foreign subject's checkout commit, or why it is not known.
func subjectCommit(s results.PeerSubject) string {
	switch {
	case s.Commit != "":
		return code(shortCommit(s.Commit))
	case s.Digest != "":
		return "unknown (not a git checkout; files " + code(s.Digest) + ")"
	}
	return dash
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func peersTable() table {
	return table{
		head: []string{"Scenario", "Subject", "Events/s", "Stored/s", "HTTP p50", "HTTP p95", "HTTP p99", "HTTP max", "Commit p99",
			"CPU s", "Peak RSS MiB", "Lost", "Duplicated", "Unexpected", "Unknown outcome", "Stats exact", "Audit exact", "Verdict", "Events/s ÷ original"},
		align: "llrrrrrrrrrrrrrlllr",
	}
}

// addPeerRows adds a row per run of ps (and, when withPublished, a row of
// the original's published figures for a scenario that has them).
func addPeerRows(t *table, ps results.PeerScenario, withPublished bool) {
	var orig *results.Scenario
	for i := range ps.Runs {
		if ps.Runs[i].Subject == originalSubject && ps.Runs[i].Perf != nil && ps.Runs[i].Error == "" {
			orig = &ps.Runs[i]
		}
	}
	for _, r := range ps.Runs {
		t.add(peerRow(ps.Name, r, orig)...)
	}
	if !withPublished {
		return
	}
	for _, r := range ps.Runs {
		if len(r.Published) == 0 {
			continue
		}
		pub := r.Published
		cell := func(k string, f func(float64) string) string {
			if v, ok := pub[k]; ok {
				return f(v)
			}
			return dash
		}
		row := []string{esc(ps.Name), "original (published)", cell("events_per_second", fmtRate), dash,
			cell("p50_ms", fmtMS), cell("p95_ms", fmtMS), dash, cell("max_ms", fmtMS), dash, dash, dash,
			dash, dash, dash, dash, dash, dash, "published, another machine", dash}
		if orig != nil {
			if v, ok := pub["events_per_second"]; ok {
				row[len(row)-1] = fmtRatio(ratio(v, orig.Perf.EventsPerSec))
			}
		}
		t.add(row...)
		break
	}
}

func peerRow(scenario string, r results.Scenario, orig *results.Scenario) []string {
	row := []string{esc(scenario), esc(orDash(r.Subject))}
	if r.Error != "" && r.Perf == nil {
		reason := "not run: " + shorten(r.Error, 200)
		for len(row) < 17 {
			row = append(row, dash)
		}
		return append(row, "**"+esc(reason)+"**", dash)
	}
	if p := r.Perf; p != nil {
		commit := fmtPct(p.Commit, p.Commit.P99)
		switch {
		case p.CommitNotMeasured != "":
			commit = notMeasured
		case p.CommitFrom == results.CommitFromSend && p.Commit.N > 0:
			commit += " †"
		}
		cpu, rss := fixed(p.CPUSeconds, 1), fixed(p.PeakRSSMiB, 1)
		if p.UsageNotMeasured != "" {
			cpu, rss = notMeasured, notMeasured
		}
		row = append(row, fmtRate(p.EventsPerSec), fmtRate(p.RowsPerSec), fmtPct(p.HTTP, p.HTTP.P50), fmtPct(p.HTTP, p.HTTP.P95),
			fmtPct(p.HTTP, p.HTTP.P99), fmtPct(p.HTTP, p.HTTP.Max), commit, cpu, rss)
	} else {
		for len(row) < 11 {
			row = append(row, dash)
		}
	}
	c := r.Check
	row = append(row, countCell(c, checker.CheckLost, c.Lost), countCell(c, checker.CheckDuplicated, c.Duplicated),
		countCell(c, checker.CheckUnexpected, c.Unexpected), fmtCount(c.UnknownCopies)+" copies",
		exactCell(c, checker.CheckStatsExact, c.StatsExact), exactCell(c, checker.CheckAuditExact, c.AuditExact), verdict(r))
	rat := dash
	if orig != nil && r.Perf != nil {
		rat = fmtRatio(ratio(r.Perf.EventsPerSec, orig.Perf.EventsPerSec))
	}
	return append(row, rat)
}

// countCell is a checker count, or "not measured".
func countCell(c checker.Result, check string, n int) string {
	if !c.Measured(check) {
		return notMeasured
	}
	return fmtCount(int64(n))
}

// exactCell is yes / no for an exactness check, or "not measured".
func exactCell(c checker.Result, check string, ok bool) string {
	if !c.Measured(check) {
		return notMeasured
	}
	return yesNo(ok)
}

// writePeerRun writes what the checker said of one run.
func writePeerRun(md *mdWriter, r results.Scenario) {
	md.heading(3, esc(orDash(r.Subject)))
	if r.RunDir != "" {
		md.para("Run folder %s.", codeSpan(r.RunDir))
	}
	if r.Error != "" {
		md.para("**The run did not complete:** %s", esc(shorten(r.Error, 600)))
	}
	c := r.Check
	if r.Perf != nil || r.Error == "" {
		md.para("Attempted %s keys, %s acknowledged, %s stored; requests ok %s, failed %s, unknown %s (%s event copies of unknown outcome).",
			fmtCount(int64(c.Attempted)), fmtCount(int64(c.Acknowledged)), fmtCount(int64(c.Stored)),
			fmtCount(int64(c.Requests.OK)), fmtCount(int64(c.Requests.Fail)), fmtCount(int64(c.Requests.Info)), fmtCount(c.UnknownCopies))
	}
	if len(c.Violations) > 0 {
		md.para("The checker:")
		var items []string
		for _, v := range c.Violations {
			items = append(items, esc(v))
		}
		md.bullets(items)
	}
	if len(c.NotMeasured) > 0 {
		md.para("Not measured:")
		var items []string
		for _, n := range c.NotMeasured {
			items = append(items, code(n.Check)+": "+esc(n.Reason))
		}
		md.bullets(items)
	}
	if len(c.Examples) > 0 {
		var ex []string
		for _, k := range c.Examples {
			ex = append(ex, k.Topic+"/"+k.ID)
		}
		md.para("Example keys: %s.", code(strings.Join(ex, ", ")))
	}
	for _, n := range r.Notes {
		md.para("_%s._", esc(n))
	}
	if p := r.Perf; p != nil && p.UsageNotMeasured != "" {
		md.para("CPU and memory not measured: %s.", esc(p.UsageNotMeasured))
	}
}
