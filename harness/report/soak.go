package report

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// WriteSoak writes dir/soak.md, which presents s, and its plots under
// dir/plots/soak-*.png: memory (service RSS, Redis used memory),
// goroutines and backlog, PostgreSQL tables and ledger rows, latency per
// minute. s is rendered as recorded: its verdict is results.Soak.Judge's.
func WriteSoak(dir string, s results.Soak) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	series := map[string]results.SoakSeries{}
	for _, sr := range s.SoakSeriesOf() {
		series[sr.Name] = sr
	}
	type job struct {
		what, suffix string
		draw         func() ([]byte, error)
	}
	h := s.Header
	jobs := []job{
		{"service RSS and Redis used memory", "memory", func() ([]byte, error) {
			return plotSoak(h, "soak: memory (MiB)", "MiB", 1<<20, series,
				[]string{results.SoakRSS}, []string{results.SoakRedisMemory})
		}},
		{"goroutines and backlog", "goroutines", func() ([]byte, error) {
			return plotSoak(h, "soak: goroutines and backlog", "count", 1, series,
				[]string{results.SoakGoroutines}, []string{results.SoakBacklog})
		}},
		{"PostgreSQL table sizes and ledger rows", "tables", func() ([]byte, error) {
			return plotSoak(h, "soak: PostgreSQL tables (MiB)", "MiB", 1<<20, series,
				[]string{results.SoakEventsBytes, results.SoakEventsIndexBytes, results.SoakLedgerBytes, results.SoakLedgerIndexBytes, results.SoakAuditBytes, results.SoakAuditIndexBytes},
				[]string{results.SoakLedgerRows})
		}},
		{"HTTP latency per minute", "latency", func() ([]byte, error) {
			return plotSoak(h, "soak: publish latency per minute (ms)", "ms", 1, series,
				[]string{results.SoakHTTPP50, results.SoakHTTPP99, results.SoakHTTPP99Quiet})
		}},
	}
	var links []plotLink
	for _, j := range jobs {
		data, err := j.draw()
		if errors.Is(err, errNoData) {
			continue
		}
		if err != nil {
			return fmt.Errorf("report: soak %s plot: %w", j.suffix, err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "plots"), 0o755); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		rel := "plots/soak-" + j.suffix + ".png"
		if err := results.WriteFile(filepath.Join(dir, filepath.FromSlash(rel)), data); err != nil {
			return err
		}
		links = append(links, plotLink{alt: "soak: " + j.what, rel: rel})
	}
	return writeMarkdown(dir, "soak.md", soakMarkdown(s, links))
}

// plotSoak draws the named series over time (minutes), values divided by
// div: top in one panel, bottom (if any) in a second one.
func plotSoak(h results.Header, title, unit string, div float64, series map[string]results.SoakSeries, top []string, bottom ...[]string) ([]byte, error) {
	panel := func(title, unit string, div float64, names []string) (*plot.Plot, int, error) {
		p := newPlot(title, "time since start (min)", unit)
		var lines []xyLine
		for i, n := range names {
			sr, ok := series[n]
			if !ok {
				continue
			}
			var xys plotter.XYs
			for _, s := range sr.Samples {
				xys = append(xys, plotter.XY{X: s.At / 60, Y: s.Value / div})
			}
			lines = append(lines, xyLine{name: n, xys: xys, color: plotutil.Color(i), dashed: strings.HasSuffix(n, "_index_bytes")})
		}
		pts, err := addLines(p, lines...)
		if err != nil {
			return nil, 0, err
		}
		fromZero(p)
		// Room for a legend of more than two lines above the data.
		p.Y.Max *= 1 + 0.12*float64(max(0, len(lines)-2))
		return p, pts, nil
	}
	p, n, err := panel(titled(h, title), unit, div, top)
	if err != nil {
		return nil, err
	}
	plots := []*plot.Plot{p}
	for _, b := range bottom {
		unit := "count"
		if series[b[0]].Unit == "bytes" {
			unit = "MiB"
		}
		d := 1.0
		if unit == "MiB" {
			d = 1 << 20
		}
		q, m, err := panel("", unit, d, b)
		if err != nil {
			return nil, err
		}
		plots = append(plots, q)
		n += m
	}
	if n == 0 {
		return nil, errNoData
	}
	height := plotHeight
	if len(plots) > 1 {
		height = plotTall
	}
	return render(h, height, plots...)
}

// soakMarkdown is soak.md.
func soakMarkdown(s results.Soak, plots []plotLink) []byte {
	var md mdWriter
	md.documentHead("ChronicleWeaver soak", "`soak.json`", s.Header)
	sc := s.Scenario
	md.heading(2, "Verdict")
	switch {
	case s.Pass && s.FlatnessJudged:
		md.para("**PASS**: the run is valid and every judged series is flat after the warm-up of %s s.", fixed(s.WarmUp, 0))
	case s.Pass:
		md.para("**PASS (smoke)**: the run is valid and every judged series was sampled. Flatness is not judged in a smoke run " +
			"(3 minutes with a fault every 20-40 s, shorter than the full run's warm-up): its lines are recorded below.")
	default:
		md.para("**FAIL**:")
		md.bullets(escAll(s.Reasons))
	}
	if len(s.Unjudged) > 0 {
		md.para("Recorded, not judged:")
		md.bullets(escAll(s.Unjudged))
	}
	md.para("Scenario `%s`, mode `%s`, run folder `%s`. Pass: the checker valid (with every fault applied and its effects seen); "+
		"service RSS, goroutines, Redis used memory and ledger rows flat after the warm-up (the least-squares line over the samples "+
		"after it changes by at most %s of the series' mean over that span); and the p99 latency of the minutes no fault touched "+
		"flat within %s. Slopes are per hour.",
		sc.Name, sc.Mode, sc.RunDir, fmtPercent(s.MaxDrift), fmtPercent(s.LatencyMaxDrift))

	md.heading(2, "Series")
	t := table{head: []string{"Series", "Unit", "Samples", "Mean after warm-up", "Slope per hour", "Change over the span", "Bound", "Judged"},
		align: "llrrrrrl"}
	for _, sr := range s.SoakSeriesOf() {
		tr := sr.Trend
		judged := "recorded only"
		if sr.Flat && !s.FlatnessJudged {
			judged = "fitted (smoke: not judged)"
		} else if sr.Flat {
			judged = "flat"
			switch {
			case tr == nil:
				judged = "not judged"
			case tr.NotJudged != "":
				judged = "**not judged**: " + esc(tr.NotJudged)
			case !tr.Flat:
				judged = "**drifts**"
			}
		}
		mean, slope, drift, bound := dash, dash, dash, dash
		if tr != nil && tr.NotJudged == "" {
			mean, slope, drift = soakValue(tr.Mean, sr.Unit), soakValue(tr.Slope, sr.Unit), fmtPercent(tr.Drift)
			if sr.Flat {
				bound = fmtPercent(tr.MaxDrift)
			}
		}
		t.add(code(sr.Name), soakUnit(sr.Unit), fmtCount(int64(len(sr.Samples))), mean, slope, drift, bound, judged)
	}
	md.table(t)
	if smp := sc.Soak; smp != nil {
		md.para("Sampled every %s s: %s rounds, %s readings failed (a node down under a fault; left out).",
			fixed(smp.Every, 0), fmtCount(int64(smp.Taken)), fmtCount(int64(smp.Failed)))
		if len(smp.Errors) > 0 {
			md.para("First failed readings:")
			md.bullets(escAll(smp.Errors[:min(len(smp.Errors), 5)]))
		}
	}
	md.para("Latency per minute: p50 and p99 of the publish requests completed in each minute since the start; " +
		"`http_p99_quiet_ms` leaves out the minutes a fault touched (from its injection to its recovery and 10 s after).")

	md.heading(2, "Run")
	md.para("Verdict of the run: %s. Faults injected: %d; the longest until every service was ready again: %s s. Drain after the load: %s s.",
		verdict(sc), len(sc.Faults), fmtSec(sc.MaxToReady), fmtSec(sc.DrainTime))
	if v := sc.AllViolations(); len(v) > 0 {
		md.bullets(escAll(v))
	}
	writeCheckTable(&md, sc)
	if len(plots) > 0 {
		md.heading(2, "Plots")
		var imgs []string
		for _, l := range plots {
			imgs = append(imgs, "!["+esc(l.alt)+"]("+l.rel+")")
		}
		md.block(strings.Join(imgs, "\n\n"))
	}
	return md.bytes()
}

func escAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = esc(v)
	}
	return out
}

// soakValue formats a value (or slope) of unit: bytes in MiB.
func soakValue(v float64, unit string) string {
	if unit == "bytes" {
		return fixed(v/(1<<20), 2)
	}
	return fixed(v, 2)
}

func soakUnit(unit string) string {
	if unit == "bytes" {
		return "MiB"
	}
	return unit
}
