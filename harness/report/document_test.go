package report

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

func TestUpdate(t *testing.T) {
	t.Parallel()
	doc := "# Title\n\nProse 1.\n\n<!-- generated:a -->\nold a\n<!-- /generated:a -->\n\n" +
		"```markdown\n<!-- generated:example -->\n```\n\n" +
		"More prose.\n<!-- generated:b -->\n<!-- /generated:b -->\nEnd.\n"
	sections := map[string]string{"a": "| x |\n| --- |\n| 1 |\n", "b": "line b"}
	want := "# Title\n\nProse 1.\n\n<!-- generated:a -->\n\n| x |\n| --- |\n| 1 |\n\n<!-- /generated:a -->\n\n" +
		"```markdown\n<!-- generated:example -->\n```\n\n" +
		"More prose.\n<!-- generated:b -->\n\nline b\n\n<!-- /generated:b -->\nEnd.\n"

	got, err := Update([]byte(doc), sections)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("Update:\n%s\nwant:\n%s", got, want)
	}
	again, err := Update(got, sections)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, got) {
		t.Errorf("Update is not idempotent:\n%s", again)
	}

	diffs, err := Diff([]byte(doc), sections)
	if err != nil {
		t.Fatal(err)
	}
	wantDiffs := []SectionDiff{{Name: "a", Line: 6, Have: "old a", Want: ""}, {Name: "b", Line: 15, Have: "<!-- /generated:b -->", Want: ""}}
	if !reflect.DeepEqual(diffs, wantDiffs) {
		t.Errorf("Diff = %+v, want %+v", diffs, wantDiffs)
	}
	if diffs, err := Diff(got, sections); err != nil || len(diffs) != 0 {
		t.Errorf("Diff of the updated document = %+v, %v; want none", diffs, err)
	}
}

func TestUpdateErrors(t *testing.T) {
	t.Parallel()
	open := func(n string) string { return "<!-- generated:" + n + " -->\n" }
	closing := func(n string) string { return "<!-- /generated:" + n + " -->\n" }
	sections := map[string]string{"a": "A", "b": "B"}
	tests := []struct {
		name, doc, want string
	}{
		{"no marker for a section", open("a") + closing("a"), "no markers for sections: b"},
		{"marker of an unknown section", open("a") + closing("a") + open("b") + closing("b") + open("c") + closing("c"),
			"unknown sections: c"},
		{"never closed", open("a") + closing("a") + open("b"), `section "b" is never closed`},
		{"closed but not open", open("a") + closing("a") + closing("b") + open("b") + closing("b"), `section "b" closed but not open`},
		{"nested", open("a") + open("b") + closing("b") + closing("a"), "do not nest"},
		{"closed by another", open("a") + open("b") + closing("a"), "do not nest"},
		{"mismatched close", open("a") + closing("b") + open("b") + closing("b"), `section "b" closed while section "a"`},
		{"twice", open("a") + closing("a") + open("b") + closing("b") + open("a") + closing("a"), `section "a" appears twice`},
		{"malformed", open("a") + closing("a") + "<!-- generated: b-->\n" + closing("b"), "malformed marker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Update([]byte(tt.doc), sections)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Update error = %v, want one containing %q", err, tt.want)
			}
			if _, derr := Diff([]byte(tt.doc), sections); derr == nil {
				t.Errorf("Diff: no error")
			}
		})
	}
}

// handInputs are results of every kind: each bench scenario (seed-k6 with
// published figures, the searches with steps, scale, aof, upsert), the
// verify suite, properties, repository facts and some plots.
func handInputs(t *testing.T) Inputs {
	t.Helper()
	hb := handBench(t)
	seed, throughput, broken := hb.Scenarios[0], hb.Scenarios[1], hb.Scenarios[2]
	seed.Latencies = nil
	seed.Distribution = results.DistributionOf(handBench(t).Scenarios[0].Latencies)
	throughput.Mode = "full"
	perf := func(ev, p50, p99, cpu, rss, ftl float64) *results.Perf {
		return &results.Perf{Seconds: 20, Requests: 1000, RequestsPerSec: 50, EventsAcked: int64(ev * 20), EventsPerSec: ev,
			RowsStored: int64(ev * 14), RowsPerSec: ev * 0.7, HTTP: results.Percentiles{N: 1000, P50: p50, P90: p99 * 0.8, P95: p99 * 0.9, P99: p99, Max: p99 * 2},
			Commit: results.Percentiles{N: 700, P50: p50 / 2, P99: p99 / 2}, FirstToLastCommit: ftl, CPUSeconds: cpu, PeakRSSMiB: rss}
	}
	valid := checker.Result{Valid: true, StatsExact: true, AuditExact: true}
	bench := func(name string, services int, settings map[string]string, p *results.Perf) results.Scenario {
		return results.Scenario{Name: name, Kind: "bench", Mode: "full", Check: valid, Perf: p, Valid: true,
			Environment: results.Environment{Backend: "local", Services: services, DurableDB: true, Settings: settings}}
	}
	single := results.Scenario{Name: "single-events", Kind: "search", Mode: "full", Check: valid, Valid: true,
		Perf: perf(3125, 1.75, 8.5, 9.5, 40.25, 5.5),
		Steps: []results.Step{
			{Rate: 1000, Achieved: 999.5, EventsPerSec: 999.5, HTTP: results.Percentiles{N: 5000, P50: 1.5, P99: 4.25}, Pass: true},
			{Rate: 1250, Achieved: 1249.8, EventsPerSec: 1249.8, HTTP: results.Percentiles{N: 6250, P50: 1.75, P99: 8.5}, Pass: true},
			{Rate: 1562.5, Achieved: 1410.2, EventsPerSec: 1410.2, HTTP: results.Percentiles{N: 7000, P50: 9.5, P99: 31.75}, BacklogGrowth: 3400, Pass: false},
		},
		BestRate: 1250, SearchBoundMS: 10}
	stress := bench("stress-20k", 1, nil, perf(41234, 120.5, 480.25, 33.5, 210.5, 0.75))
	stress.Perf.RowsStored, stress.Perf.RowsPerSec = 14000, 18666.7
	b := &results.Bench{Header: handHeader(), Scenarios: []results.Scenario{
		seed, stress, throughput, single,
		bench("scale-1", 1, nil, perf(40000, 10.5, 45.25, 30.5, 100.25, 20.1)),
		bench("scale-2", 2, nil, perf(64000, 9.5, 41.5, 61.5, 190.75, 20.2)),
		bench("scale-3", 3, nil, perf(70000, 12.75, 60.5, 90.25, 280.5, 20.3)),
		bench("aof-everysec", 1, nil, perf(5200, 5.5, 22.25, 10.25, 55.5, 20.4)),
		bench("aof-always", 1, nil, perf(1300, 21.5, 88.75, 8.5, 50.25, 20.5)),
		bench("upsert-unnest", 1, map[string]string{"UPSERT_METHOD": "unnest", "BATCH_SIZE": "5"}, perf(90000, 80.5, 300.25, 20.5, 150.5, 1.2)),
		bench("upsert-copy", 1, map[string]string{"UPSERT_METHOD": "copy", "BATCH_SIZE": "5"}, perf(120000, 60.25, 220.5, 18.75, 170.25, 0.9)),
		broken,
	}}
	v := handVerify()
	v.Header.Command = "make verify"
	return Inputs{
		Bench: b, Verify: &v, Properties: v.Properties,
		Repo: &results.Repo{Commit: "abc1234-dirty", TestFiles: 53, TestFuncs: 412, GoFiles: 160, GoLines: 31415},
		Plots: []string{"seed-k6-throughput.png", "seed-k6-latency.png", "seed-k6-latency-distribution.png", "throughput-search.png",
			"gone-scenario-latency.png"},
		ResultsDir: "results",
	}
}

func TestSections(t *testing.T) {
	t.Parallel()
	in := handInputs(t)
	got := Sections(in)
	want := map[string][]string{
		"provenance": {
			"| Field | `results/bench.json` | `results/verify.json` |",
			"| Commit | `v0.1.0-3-gabc1234-dirty` | `v0.1.0-3-gabc1234-dirty` |",
			"| Command | `make bench` | `make verify` |",
			"| CPUs (nproc) | 8 | 8 |", "| CPU model | Test CPU @ 3.00GHz |", "| Memory | 32,000 MiB |",
			"| PostgreSQL | PostgreSQL 17.2 |", "| Durable PostgreSQL | yes (fsync on) |",
			"| Commit | `abc1234-dirty` |", "| Go files | 160 |", "| Lines of Go | 31,415 |", "| Test files (`*_test.go`) | 53 |",
			"| Test, benchmark and fuzz functions | 412 |",
		},
		"bench-summary": {
			"| Scenario | Mode | Events/s | Stored/s | Req/s | HTTP p50 | HTTP p95 | HTTP p99 | Commit p50 | Commit p99 | CPU s | Peak RSS MiB | Valid |",
			"| [seed-k6](results/bench.md#scenario-seed-k6) | full | 284 | 200 | 284.0 | ",
			"| 3.25 | 12.50 | 12.3 | 48.2 | valid |",
			"| [broken-run](results/bench.md#scenario-broken-run) | full | — | — | — | — | — | — | — | — | — | — | **INVALID** |",
			"**INVALID runs: [broken-run](results/bench.md#scenario-broken-run).**",
			"| [scale-2](results/bench.md#scenario-scale-2) | full | 64,000 | 44,800 | 50.0 | 9.50 | 37.35 | 41.50 | 4.75 | 20.75 | 61.5 | 190.8 | valid |",
		},
		"original": {
			"| Measure | Original (published) | Ours | Ratio (ours / original) |",
			"| Events/s (seed-k6) | 221 | 284 | 1.28× |",
			"| HTTP p50 (ms) (seed-k6) | 21.30 |",
			"| Error rate (seed-k6) | 0.00% | 0.00% | — |",
			"| `vus` (seed-k6) | 10.00 | — | — |",
			"| Test files | — | 53 | — |",
		},
		"throughput": {
			"| Offered req/s | Achieved req/s | Events/s | HTTP p99 (ms) | Backlog growth | Pass |",
			"| 200.0 | 199.5 | 19,950 | 90.00 | 0 | yes |",
			"| 400.0 | 310.0 | 31,000 | 450.00 | 12,000 | no |",
			"Highest passing rate: 200.0 requests/s (bound: HTTP p99 at most 100.00 ms, no backlog growth).",
			"| Acknowledged events/s | 20,000 |",
			"| Raw PostgreSQL events/s | 50,000 |", "| Service acknowledged events/s | 20,000 |",
			"| Service / raw PostgreSQL (events/s) | 0.40× |",
		},
		"single-events": {
			"| 1,562.5 | 1,410.2 | 1,410 | 31.75 | 3,400 | no |",
			"Highest passing rate: 1,250.0 requests/s (bound: HTTP p99 at most 10.00 ms, no backlog growth).",
			"| HTTP p50 / p99 (ms) | 1.75 / 8.50 |",
		},
		"stress-20k": {
			"| First request to last commit (s) | 0.75 |", "| Acknowledged events/s (first request to last answer) | 41,234 |",
			"| Stored events/s (first request to last commit) | 18,667 |", "| Distinct events stored | 14,000 |",
		},
		"scaling": {
			"| [scale-1](results/bench.md#scenario-scale-1) | 1 | 28,000 | 40,000 | 45.25 | 30.5 | 100.2 | 1.00× |",
			"| [scale-2](results/bench.md#scenario-scale-2) | 2 | 44,800 | 64,000 | 41.50 | 61.5 | 190.8 | 1.60× |",
			"| [scale-3](results/bench.md#scenario-scale-3) | 3 | 49,000 | 70,000 | 60.50 | 90.2 | 280.5 | 1.75× |",
		},
		"aof": {
			"| [aof-everysec](results/bench.md#scenario-aof-everysec) | `everysec` | 5,200 | 5.50 | 22.25 |",
			"| [aof-always](results/bench.md#scenario-aof-always) | `always` | 1,300 | 21.50 | 88.75 |",
			"events/s 0.25×, HTTP p50 3.91×, HTTP p99 3.99×.",
		},
		"upsert": {
			"| [upsert-unnest](results/bench.md#scenario-upsert-unnest) | `unnest` | 90,000 | 1.20 | 63,000 |",
			"| [upsert-copy](results/bench.md#scenario-upsert-copy) | `copy` | 120,000 | 0.90 | 84,000 |",
			"copy / unnest: events/s 1.33×, first request to last commit 0.75×.",
		},
		"verify": {
			"| [crash-service](results/verify.md#scenario-crash-service) | smoke | 3 (**1 failed**) | 4,200 | 4,100 | 0 | 0 | 0 | 50 | yes | yes | 1.95 | valid |",
			"| [cut-redis](results/verify.md#scenario-cut-redis) | smoke | 0 | 1,000 | 990 | 5 | 1 | 0 | 0 | yes | **NO** | — | **INVALID** |",
			"3 faults in 1 scenario (**1 failed to inject**); the longest recovery (heal to every service ready) took 1.95 s (crash-service).",
			"**INVALID: [cut-redis](results/verify.md#scenario-cut-redis).**",
		},
		"planted": {
			"| `ack-before-commit` | acknowledge the queue entry before the commit | crash-service | yes | 3 acknowledged keys lost; stats: received 10 != unique\\_processed 7 + duplicated\\_dropped 0 |",
			"| `skip-dedup` | insert without ON CONFLICT | two-instances | **NO** | — |",
			"**1 of 2 planted bugs caught; NOT caught: `skip-dedup`.**",
		},
		"properties": {
			"| dedup | none | 100 | no | pass | — | — |",
			"| dedup | `skip-dedup` | 12 | yes | caught | 3 | `publish [t/a, t/a] \\| restart \\| drain` |",
			"Every clean run passed and every planted bug was caught.",
		},
		"figures": {
			"![seed-k6: throughput over time](results/plots/seed-k6-throughput.png)",
			"![seed-k6: latency over time](results/plots/seed-k6-latency.png)",
			"![seed-k6: request latency distribution](results/plots/seed-k6-latency-distribution.png)",
			"![throughput: rate search](results/plots/throughput-search.png)",
			"_seed-k6: cumulative distribution of HTTP request latency._",
		},
	}
	for _, name := range SectionNames {
		mustContain(t, name, got[name], want[name]...)
	}
	if strings.Contains(got["figures"], "gone-scenario") || strings.Contains(got["figures"], "throughput-throughput.png") {
		t.Errorf("figures links a plot of no scenario or a missing file:\n%s", got["figures"])
	}
	if !strings.Contains(got["scaling"], "Speedup") || strings.Contains(got["original"], "7,748") {
		t.Errorf("unexpected:\n%s\n%s", got["scaling"], got["original"])
	}
	if t.Failed() {
		for _, n := range SectionNames {
			t.Logf("section %s:\n%s", n, got[n])
		}
	}
}

func TestSectionsNames(t *testing.T) {
	t.Parallel()
	got := Sections(Inputs{})
	var names []string
	for n, body := range got {
		names = append(names, n)
		if strings.TrimSpace(body) == "" {
			t.Errorf("section %s is empty", n)
		}
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(SectionNames))
	if !slices.Equal(names, want) {
		t.Errorf("Sections renders %v, SectionNames are %v", names, want)
	}
}

func TestSectionsPublished(t *testing.T) {
	t.Parallel()
	in := handInputs(t)
	seed := &in.Bench.Scenarios[0]
	seed.Published = map[string]float64{"events_per_second": 221.13, "events_total": 7748, "seconds_total": 35.04, "test_files": 17}
	got := Sections(in)["original"]
	mustContain(t, "original", got,
		"| Events/s (seed-k6) | 221 | 284 | 1.28× |",
		"| Events acknowledged (seed-k6) | 7,748 | 8,520 | 1.10× |",
		"| Duration (s) (seed-k6) | 35.04 | 30.00 | 0.86× |",
		"| Test files | 17 | 53 | 3.12× |")
	for _, absent := range []string{"p50_ms", "HTTP p50", "`test_files`"} {
		if strings.Contains(got, absent) {
			t.Errorf("original shows %q, which is not published:\n%s", absent, got)
		}
	}

	in.Repo = nil
	got = Sections(in)["original"]
	mustContain(t, "original without repo.json", got, "| Test files | 17 | — | — |", "_No `results/repo.json` yet: `make report` writes it._")
}

// numberRe finds the numbers of a text: digits, thousands separators and
// decimals.
var numberRe = regexp.MustCompile(`[0-9][0-9,]*(\.[0-9]+)?`)

// templateNumbers are the numbers of column names, not data.
var templateNumbers = regexp.MustCompile(`\bp(50|90|95|99)\b`)

func numbersIn(s string) []string {
	var out []string
	for _, n := range numberRe.FindAllString(templateNumbers.ReplaceAllString(s, "p"), -1) {
		out = append(out, strings.TrimRight(n, ","))
	}
	return out
}

// traceable is every way a number of v (or a ratio of two of them, or a
// number inside one of its strings) may be printed.
func traceable(v any) map[string]bool {
	var nums []float64
	allowed := map[string]bool{}
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			if tm, ok := v.Interface().(time.Time); ok {
				for _, n := range numbersIn(tm.UTC().Format(time.RFC3339)) {
					allowed[n] = true
				}
				return
			}
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice, reflect.Array:
			nums = append(nums, float64(v.Len()))
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			nums = append(nums, float64(v.Len()))
			for _, k := range v.MapKeys() {
				walk(k)
				walk(v.MapIndex(k))
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			nums = append(nums, float64(v.Int()))
		case reflect.Float32, reflect.Float64:
			nums = append(nums, v.Float())
		case reflect.String:
			for _, n := range numbersIn(v.String()) {
				allowed[n] = true
			}
		}
	}
	walk(reflect.ValueOf(v))
	for _, a := range nums {
		for _, prec := range []int{0, 1, 2} {
			allowed[fixed(a, prec)] = true
		}
		allowed[fixed(a*100, 2)] = true
		for _, b := range nums {
			if b != 0 && !math.IsNaN(a/b) {
				allowed[fixed(a/b, 2)] = true
			}
		}
	}
	return allowed
}

func TestSectionsInventNoNumber(t *testing.T) {
	t.Parallel()
	in := handInputs(t)
	allowed := traceable(in)
	// Counts the verify section derives: faults injected in all (3), the
	// failed injection (1), scenarios with faults (1), planted bugs caught (1).
	for _, n := range []string{"3", "1"} {
		allowed[n] = true
	}
	for name, body := range Sections(in) {
		for _, n := range numbersIn(body) {
			if !allowed[n] {
				t.Errorf("section %s prints %s, which traces to no input:\n%s", name, n, body)
			}
		}
	}
}

func TestSectionsMissingInputs(t *testing.T) {
	t.Parallel()
	got := Sections(Inputs{ResultsDir: "../results"})
	notice := func(file, cmd string) string {
		return "_No `../results/" + file + "` yet: `" + cmd + "` writes it._"
	}
	want := map[string][]string{
		"provenance":    {notice("bench.json", "make bench"), notice("verify.json", "make verify-full"), notice("repo.json", "make report")},
		"bench-summary": {notice("bench.json", "make bench")},
		"original":      {notice("bench.json", "make bench")},
		"throughput":    {notice("bench.json", "make bench")},
		"verify":        {notice("verify.json", "make verify-full")},
		"planted":       {notice("verify.json", "make verify-full")},
		"properties":    {notice("properties.json", "make verify-full")},
		"figures":       {notice("bench.json", "make bench")},
	}
	for name, wants := range want {
		mustContain(t, name, got[name], wants...)
	}
	for name, body := range got {
		if ns := numbersIn(strings.NewReplacer("bench.json", "", "20k", "").Replace(body)); len(ns) > 0 {
			t.Errorf("section %s without inputs prints numbers %v:\n%s", name, ns, body)
		}
	}

	// bench.json without the scenarios a section needs, no plots.
	in := Inputs{Bench: &results.Bench{Header: handHeader(), Scenarios: []results.Scenario{{Name: "scale-2", Kind: "bench", Valid: true,
		Perf: &results.Perf{EventsPerSec: 100}}}}, Properties: []results.Property{}}
	got = Sections(in)
	absent := func(name string) string {
		return "_No scenario `" + name + "` in `results/bench.json`: `make bench` runs it._"
	}
	mustContain(t, "throughput", got["throughput"], absent("throughput"))
	mustContain(t, "stress-20k", got["stress-20k"], absent("stress-20k"))
	mustContain(t, "scaling", got["scaling"], absent("scale-1"), absent("scale-3"), "| [scale-2](results/bench.md#scenario-scale-2) | — | 0 | 100 | — |")
	mustContain(t, "aof", got["aof"], absent("aof-everysec"), absent("aof-always"))
	mustContain(t, "upsert", got["upsert"], absent("upsert-unnest"), absent("upsert-copy"))
	mustContain(t, "figures", got["figures"], "_No plots in `results/plots/` yet: `make bench` draws them._")
	mustContain(t, "properties", got["properties"], "_`results/properties.json` holds no property run._")
	mustContain(t, "original", got["original"], "_No published figures of the original in `results/bench.json`")
	if strings.Contains(got["scaling"], "Speedup") && !strings.Contains(got["scaling"], "| — |\n") {
		t.Errorf("scaling without scale-1 shows a speedup:\n%s", got["scaling"])
	}
}

func TestSectionsDeterministic(t *testing.T) {
	t.Parallel()
	in := handInputs(t)
	in.Bench.Scenarios[0].Published["zeta"] = 1
	in.Bench.Scenarios[0].Published["alpha"] = 2
	first := Sections(in)
	for range 20 {
		if got := Sections(in); !reflect.DeepEqual(got, first) {
			t.Fatal("Sections gave different output for the same inputs")
		}
	}
	if a, z := strings.Index(first["original"], "`alpha`"), strings.Index(first["original"], "`zeta`"); a < 0 || z < a {
		t.Errorf("published keys out of order:\n%s", first["original"])
	}
}

func TestLoadInputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in, err := LoadInputs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if in.Bench != nil || in.Verify != nil || in.Properties != nil || in.Repo != nil || in.Plots != nil {
		t.Errorf("LoadInputs of an empty folder = %+v, want nothing", in)
	}

	b := handInputs(t).Bench
	v := handVerify()
	for _, err := range []error{
		results.WriteBench(dir, *b), results.WriteVerify(dir, v), results.WriteRepo(dir, results.Repo{Commit: "c", GoFiles: 2}),
		results.WriteProperties(dir, results.Properties{Header: handHeader()}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "plots"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"b.png", "a.png", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, "plots", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in, err = LoadInputs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if in.Bench == nil || len(in.Bench.Scenarios) != len(b.Scenarios) || in.Verify == nil || len(in.Verify.PlantedBugs) != 2 ||
		in.Repo == nil || *in.Repo != (results.Repo{Commit: "c", GoFiles: 2}) || in.Properties == nil || len(in.Properties) != 0 ||
		!slices.Equal(in.Plots, []string{"a.png", "b.png"}) {
		t.Errorf("LoadInputs = %+v", in)
	}

	if err := os.WriteFile(filepath.Join(dir, "verify.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadInputs(dir); err == nil {
		t.Errorf("LoadInputs with a broken verify.json: no error")
	}
}

func TestRegenerate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var doc strings.Builder
	doc.WriteString("# Report\n\nHand-written prose stays.\n\n")
	for _, n := range SectionNames {
		fmt.Fprintf(&doc, "<!-- generated:%s -->\nstale\n<!-- /generated:%s -->\n\n", n, n)
	}
	docPath := filepath.Join(dir, "docs", "REPORT.md")
	if err := os.MkdirAll(filepath.Dir(docPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(docPath, []byte(doc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	resDir := filepath.Join(dir, "results")
	if err := results.WriteRepo(resDir, results.Repo{Commit: "c0ffee", TestFiles: 7}); err != nil {
		t.Fatal(err)
	}

	g, err := Regenerate(docPath, resDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Stale) != len(SectionNames) || g.Stale[0].Name != SectionNames[0] || g.Stale[0].Have != "stale" || g.Stale[0].Line != 6 {
		t.Errorf("Stale = %+v", g.Stale)
	}
	if wrote, err := g.Write(); err != nil || !wrote {
		t.Fatalf("Write = %v, %v", wrote, err)
	}
	after := string(readFile(t, docPath))
	mustContain(t, "regenerated document", after, "Hand-written prose stays.", "| Commit | `c0ffee` |",
		"_No `../results/bench.json` yet: `make bench` writes it._")
	if strings.Contains(after, "stale") {
		t.Errorf("a stale body survived:\n%s", after)
	}

	g, err = Regenerate(docPath, resDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Stale) != 0 {
		t.Errorf("Stale after writing = %+v", g.Stale)
	}
	if wrote, err := g.Write(); err != nil || wrote {
		t.Errorf("Write of a current document = %v, %v; want no write", wrote, err)
	}
	if _, err := Regenerate(filepath.Join(dir, "missing.md"), resDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Regenerate of a missing document: %v", err)
	}
}

// repoRoot is the module root: the nearest folder up from here holding
// go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// TestReportIsCurrent keeps REPORT.md from quoting a stale number: its
// generated sections must be what `make report` writes for the committed
// results.
func TestReportIsCurrent(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	doc := filepath.Join(root, "REPORT.md")
	if _, err := os.Stat(doc); err != nil {
		t.Fatalf("REPORT.md must exist at the repository root (%v): write it with a <!-- generated:NAME --> "+
			"... <!-- /generated:NAME --> pair for each of %s, then run `make report`", err, strings.Join(SectionNames, ", "))
	}
	g, err := Regenerate(doc, filepath.Join(root, "results"))
	if err != nil {
		t.Fatalf("%v\n(fix REPORT.md's markers, then run `make report`)", err)
	}
	if len(g.Stale) == 0 {
		return
	}
	var b strings.Builder
	for _, d := range g.Stale {
		fmt.Fprintf(&b, "\n  %s (REPORT.md:%d)\n    have: %q\n    want: %q", d.Name, d.Line, d.Have, d.Want)
	}
	t.Errorf("REPORT.md's generated sections differ from results/*.json; run `make report` and commit REPORT.md:%s", b.String())
}

func TestSectionsFlagRuns(t *testing.T) {
	t.Parallel()
	in := handInputs(t)
	for i := range in.Bench.Scenarios {
		if s := &in.Bench.Scenarios[i]; s.Name == "single-events" {
			s.Mode, s.Valid = "smoke", false
			s.Check.Violations = []string{"1 acknowledged keys lost"}
		}
	}
	got := Sections(in)["single-events"]
	mustContain(t, "single-events", got,
		"**single-events is INVALID: its figures are not results** (see [single-events](results/bench.md#scenario-single-events)).",
		"_single-events ran in smoke mode (a few seconds): its figures are not a measurement._")
}

// TestFiguresMatchWriteBench links the plots WriteBench really draws (from
// the record, as the command line renders them), and only those.
func TestFiguresMatchWriteBench(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := results.WriteBench(dir, handBench(t)); err != nil {
		t.Fatal(err)
	}
	if err := Render(dir, "bench"); err != nil {
		t.Fatal(err)
	}
	in, err := LoadInputs(dir)
	if err != nil {
		t.Fatal(err)
	}
	in.ResultsDir = "results"
	if len(in.Plots) == 0 {
		t.Fatal("WriteBench drew no plot")
	}
	got := Sections(in)["figures"]
	for _, p := range in.Plots {
		mustContain(t, "figures", got, "](results/plots/"+p+")")
	}
	if n := strings.Count(got, "!["); n != len(in.Plots) {
		t.Errorf("figures has %d images for %d plots:\n%s", n, len(in.Plots), got)
	}
}
