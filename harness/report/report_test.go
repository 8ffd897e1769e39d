package report

import (
	"bytes"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func keys(n int) []history.Key {
	ks := make([]history.Key, n)
	for i := range ks {
		ks[i] = history.Key{Topic: "t", ID: string(rune('a' + i))}
	}
	return ks
}

// handHistory is a fault at 0 ms and five publish requests:
//
//	A  100 ms -> ok   300 ms, 3 keys  (latency 200)
//	B  500 ms -> fail 1200 ms, 2 keys (latency 700)
//	C 1500 ms -> info 2500 ms, 1 key  (latency 1000)
//	D 1600 ms -> ok   1700 ms, 4 keys (latency 100)
//	E 2100 ms -> no completion, 5 keys
func handHistory(t *testing.T) []history.Op {
	t.Helper()
	r, err := history.NewRecorder("")
	if err != nil {
		t.Fatal(err)
	}
	fault := r.InvokeAt(at(0), history.NemesisProcess, "kill", nil, "service-0")
	r.Complete(fault, history.Info, at(50), 0, "", "")
	a := r.InvokeAt(at(100), 0, history.FPublish, keys(3), "")
	b := r.InvokeAt(at(500), 1, history.FPublish, keys(2), "")
	r.Complete(a, history.OK, at(300), 201, "", "")
	r.Complete(b, history.Fail, at(1200), 422, "bad", "")
	c := r.InvokeAt(at(1500), 0, history.FPublish, keys(1), "")
	d := r.InvokeAt(at(1600), 1, history.FPublish, keys(4), "")
	r.Complete(d, history.OK, at(1700), 201, "", "")
	r.InvokeAt(at(2100), 2, history.FPublish, keys(5), "")
	r.Complete(c, history.Info, at(2500), 0, "timeout", "")
	return r.Ops()
}

func TestFormat(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{fmtRate(1234567.4), "1,234,567"},
		{fmtRate(999.5), "1,000"},
		{fmtRate(-0.2), "0"},
		{fmtMS(21.3), "21.30"},
		{fmtMS(-1234.567), "-1,234.57"},
		{fmtPercent(0.00123), "0.12%"},
		{fmtRatio(ratio(3, 0)), dash},
		{fmtRatio(0.5), "0.50×"},
		{thousands(-1000), "-1,000"},
		{esc("a|b *c* <d> unique_processed"), `a\|b \*c\* \<d\> unique\_processed`},
		{codeSpan("x `y` z"), "``x `y` z``"},
		{code("a|b"), "`a\\|b`"},
		{shorten("abcdef", 4), "abc…"},
		{anchor("Scenario: seed-k6"), "scenario-seed-k6"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func handHeader() results.Header {
	return results.Header{
		Commit:    "v0.1.0-3-gabc1234-dirty",
		Date:      time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC),
		Command:   "make bench",
		Machine:   results.Machine{CPUs: 8, CPUModel: "Test CPU @ 3.00GHz", MemoryMB: 32000, OS: "linux/amd64, kernel 6.1.0"},
		Go:        "go1.26.8",
		Postgres:  "PostgreSQL 17.2",
		Redis:     "7.4.1",
		Backend:   "local",
		Settings:  map[string]string{"WORKER_COUNT": "4", "BATCH_SIZE": "100"},
		DurableDB: true,
	}
}

func handBench(t *testing.T) results.Bench {
	t.Helper()
	series := results.Series(handHistory(t), time.Second)
	lat := make([]float64, 5000)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range lat {
		lat[i] = 5 + rng.ExpFloat64()*20
	}
	invalidCheck := checker.Result{Valid: false, Attempted: 100, Acknowledged: 90, Stored: 88, Lost: 2,
		StatsExact: false, AuditExact: true,
		Violations: []string{"2 acknowledged keys lost", "stats: unique_processed grew by 88, but 90 distinct keys are stored"}}
	return results.Bench{
		Header: handHeader(),
		Scenarios: []results.Scenario{
			{
				Name: "seed-k6", Kind: "bench", Mode: "full", Description: "The original design's k6 run.",
				RunDir: "runs/20260301-123000/seed-k6", Config: map[string]any{"users": 10.0},
				Check: checker.Result{Valid: true, Attempted: 6000, Acknowledged: 6000, Stored: 6000, StatsExact: true, AuditExact: true},
				Perf: &results.Perf{Seconds: 30, Requests: 8520, RequestsPerSec: 284, EventsAcked: 8520, EventsPerSec: 284,
					RowsStored: 6000, RowsPerSec: 199.5, HTTP: results.PercentilesOf(lat), Commit: results.Percentiles{N: 6000, P50: 3.25, P99: 12.5},
					FirstToLastCommit: 30.1, CPUSeconds: 12.34, PeakRSSMiB: 48.2},
				Published: map[string]float64{"events_per_second": 221.13, "p50_ms": 21.30, "p90_ms": 45.57, "p95_ms": 52.73,
					"max_ms": 232.33, "error_rate": 0, "vus": 10},
				Series:    series,
				Latencies: lat,
				Valid:     true,
			},
			{
				Name: "throughput", Kind: "search", Mode: "smoke", Description: "Rate search | p99 < 100 ms.",
				RunDir: "runs/20260301-123000/throughput",
				Check:  checker.Result{Valid: true, StatsExact: true, AuditExact: true},
				Perf:   &results.Perf{Seconds: 10, Requests: 2000, RequestsPerSec: 200, EventsAcked: 200000, EventsPerSec: 20000},
				Steps: []results.Step{
					{Rate: 100, Achieved: 100, EventsPerSec: 10000, HTTP: results.Percentiles{N: 500, P50: 10, P99: 40, Max: 60}, Pass: true},
					{Rate: 200, Achieved: 199.5, EventsPerSec: 19950, HTTP: results.Percentiles{N: 1000, P50: 20, P99: 90, Max: 120}, Pass: true},
					{Rate: 400, Achieved: 310, EventsPerSec: 31000, HTTP: results.Percentiles{N: 1550, P50: 80, P99: 450, Max: 900},
						BacklogGrowth: 12000, ErrorRate: 0.02, SendLagMax: 35.5, Pass: false},
				},
				BestRate: 200, SearchBoundMS: 100,
				Baseline: &results.Baseline{Events: 200000, Seconds: 4, EventsPerSec: 50000, Ratio: 0.4},
				Series:   series,
				Valid:    true,
			},
			{
				Name: "broken-run", Kind: "bench", Mode: "full", Description: "A run the checker rejects.",
				Check: invalidCheck,
				Valid: false,
			},
		},
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustContain(t *testing.T, what, doc string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(doc, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

func headerStrings() []string {
	return []string{"v0.1.0-3-gabc1234-dirty", "2026-03-01T12:30:00Z", "`make bench`", "| CPUs (nproc) | 8 |",
		"Test CPU @ 3.00GHz", "32,000 MiB", "linux/amd64, kernel 6.1.0", "go1.26.8", "PostgreSQL 17.2", "7.4.1",
		"| Backend | local |", "`BATCH_SIZE=100, WORKER_COUNT=4`", "yes (fsync on)"}
}

func TestWriteBench(t *testing.T) {
	t.Parallel()
	b := handBench(t)
	dir := t.TempDir()
	if err := WriteBench(dir, b); err != nil {
		t.Fatal(err)
	}
	md := string(readFile(t, filepath.Join(dir, "bench.md")))
	if !strings.HasPrefix(md, "# ChronicleWeaver benchmarks\n") {
		t.Errorf("bench.md starts %q", md[:min(len(md), 60)])
	}
	mustContain(t, "bench.md", md, headerStrings()...)
	mustContain(t, "bench.md", md,
		// summary rows
		"| [seed-k6](#scenario-seed-k6) | full | 284 | 200 | 284.0 | ",
		"| 3.25 | 12.50 | 12.3 | 48.2 | valid |",
		"| [broken-run](#scenario-broken-run) | full | — | — |",
		"| **INVALID** |",
		"**INVALID runs: [broken-run](#scenario-broken-run).**",
		// the invalid run's violations
		"- 2 acknowledged keys lost",
		"- stats: unique\\_processed grew by 88, but 90 distinct keys are stored",
		// ours vs the original
		"| Measure | Original (published) | Ours | Ratio (ours / original) |",
		"| Events/s | 221 | 284 | 1.28× |",
		"| Error rate | 0.00% | 0.00% | — |",
		"| `vus` | 10.00 | — | — |",
		// search and baseline
		"| 400.0 | 310.0 | 31,000 | 80.00 | 450.00 | — | 900.00 | — | 35.50 | — | — | 12,000 | 2.00% | no |",
		"Highest passing rate: 200.0 requests/s (bound: HTTP p99 at most 100.00 ms, no backlog growth).",
		"| Service / raw PostgreSQL (events/s) | 0.40× |",
		"Rate search \\| p99 \\< 100 ms.",
		// plots
		"![seed-k6: throughput over time](plots/seed-k6-throughput.png)",
		"![seed-k6: latency over time](plots/seed-k6-latency.png)",
		"![seed-k6: request latency distribution](plots/seed-k6-latency-distribution.png)",
		"![throughput: rate search](plots/throughput-search.png)",
	)
	if strings.Contains(md, "broken-run-throughput.png") || strings.Contains(md, "throughput-latency-distribution.png") {
		t.Errorf("bench.md links a plot that has no data")
	}

	wantPlots := map[string][2]int{
		"seed-k6-throughput.png":           {plotWidth, plotTall},
		"seed-k6-latency.png":              {plotWidth, plotHeight},
		"seed-k6-latency-distribution.png": {plotWidth, plotHeight},
		"throughput-throughput.png":        {plotWidth, plotTall},
		"throughput-latency.png":           {plotWidth, plotHeight},
		"throughput-search.png":            {plotWidth, plotTall},
	}
	entries, err := os.ReadDir(filepath.Join(dir, "plots"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(wantPlots) {
		t.Errorf("plots/ holds %d files, want %d", len(entries), len(wantPlots))
	}
	for name, size := range wantPlots {
		data := readFile(t, filepath.Join(dir, "plots", name))
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if cfg.Width != size[0] || cfg.Height != size[1] {
			t.Errorf("%s is %dx%d, want %dx%d", name, cfg.Width, cfg.Height, size[0], size[1])
		}
		if _, err := png.Decode(bytes.NewReader(data)); err != nil {
			t.Errorf("%s does not decode: %v", name, err)
		}
		if !bytes.Contains(data, []byte("Commit: v0.1.0-3-gabc1234-dirty")) {
			t.Errorf("%s lacks the header in its text chunks", name)
		}
	}

	if _, err := os.Stat(filepath.Join(dir, "bench.json")); err == nil {
		t.Errorf("WriteBench wrote bench.json: records are results.WriteBench's")
	}
	if b.Scenarios[0].Distribution != nil {
		t.Errorf("WriteBench modified its argument")
	}
}

// TestWriteBenchDeterministic writes the same data twice, and once more
// the way the command line does, from the record results.WriteBench writes
// (Render): every file must be the same bytes.
func TestWriteBenchDeterministic(t *testing.T) {
	t.Parallel()
	b := handBench(t)
	d1, d2, d3 := t.TempDir(), t.TempDir(), t.TempDir()
	if err := WriteBench(d1, b); err != nil {
		t.Fatal(err)
	}
	if err := WriteBench(d2, b); err != nil {
		t.Fatal(err)
	}
	if err := results.WriteBench(d3, b); err != nil {
		t.Fatal(err)
	}
	if err := Render(d3, "bench"); err != nil {
		t.Fatal(err)
	}
	sameTree(t, d1, d2)
	sameTree(t, d1, d3)
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(a, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, path)
		n++
		if !bytes.Equal(readFile(t, path), readFile(t, filepath.Join(b, rel))) {
			t.Errorf("%s differs between %s and %s", rel, a, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("%s is empty", a)
	}
}

func handVerify() results.Verify {
	fault := func(sec float64, kind, errMsg string) results.Fault {
		return results.Fault{Kind: kind, Target: "service-0", At: t0.Add(time.Duration(sec * float64(time.Second))),
			Held: 0.1, ToReady: 1.25 + sec/10, Error: errMsg}
	}
	return results.Verify{
		Header: handHeader(),
		Scenarios: []results.Scenario{
			{
				Name: "crash-service", Kind: "check", Mode: "smoke", Description: "Kill the service with SIGKILL.",
				RunDir: "runs/20260301-123000/crash-service",
				Check: checker.Result{Valid: true, Attempted: 4200, Acknowledged: 4100, Stored: 4150, Recovered: 50,
					StatsExact: true, AuditExact: true},
				Faults:     []results.Fault{fault(2, "kill", ""), fault(4.5, "kill", ""), fault(7, "kill", "signal: no such process")},
				MaxToReady: 1.95, DrainTime: 0.42, Valid: true,
			},
			{
				Name: "cut-redis", Kind: "check", Mode: "smoke", Description: "Cut Redis off.",
				RunDir: "runs/20260301-123000/cut-redis",
				Check: checker.Result{Valid: false, Attempted: 1000, Acknowledged: 990, Stored: 985, Lost: 5, Duplicated: 1,
					StatsExact: true, AuditExact: false, Violations: []string{"5 acknowledged keys lost", "1 keys stored more than once"}},
				DrainTime: 3, Valid: false,
			},
		},
		PlantedBugs: []results.PlantedBug{
			{Bug: "ack-before-commit", What: "acknowledge the queue entry before the commit", Scenario: "crash-service", Caught: true,
				Violations: []string{"3 acknowledged keys lost", "stats: received 10 != unique_processed 7 + duplicated_dropped 0"}},
			{Bug: "skip-dedup", What: "insert without ON CONFLICT", Scenario: "two-instances", Caught: false},
		},
		Properties: []results.Property{
			{Property: "dedup", Checks: 100},
			{Property: "dedup", Bug: "skip-dedup", Checks: 12, Failed: true, ShrunkSteps: 3,
				Example: "publish [t/a, t/a] | restart | drain"},
		},
	}
}

func TestWriteVerify(t *testing.T) {
	t.Parallel()
	v := handVerify()
	dir := t.TempDir()
	if err := WriteVerify(dir, v); err != nil {
		t.Fatal(err)
	}
	md := string(readFile(t, filepath.Join(dir, "verify.md")))
	if !strings.HasPrefix(md, "# ChronicleWeaver verification\n") {
		t.Errorf("verify.md starts %q", md[:min(len(md), 60)])
	}
	mustContain(t, "verify.md", md, headerStrings()...)
	mustContain(t, "verify.md", md,
		"| [crash-service](#scenario-crash-service) | smoke | 3 (**1 failed**) | 4,200 | 4,100 | 0 | 0 | 0 | 50 | yes | yes | 1.95 | 0.42 | valid | `runs/20260301-123000/crash-service` |",
		"| [cut-redis](#scenario-cut-redis) | smoke | 0 | 1,000 | 990 | 5 | 1 | 0 | 0 | yes | **NO** | — | 3.00 | **INVALID** | `runs/20260301-123000/cut-redis` |",
		"**INVALID: [cut-redis](#scenario-cut-redis).**",
		"| `ack-before-commit` | acknowledge the queue entry before the commit | crash-service | yes | 3 acknowledged keys lost; stats: received 10 != unique\\_processed 7 + duplicated\\_dropped 0 |",
		"| `skip-dedup` | insert without ON CONFLICT | two-instances | **NO** | — |",
		"**1 of 2 planted bugs caught; NOT caught: `skip-dedup`.**",
		"| dedup | none | 100 | no | — | — |",
		"| dedup | `skip-dedup` | 12 | yes | 3 | `publish [t/a, t/a] \\| restart \\| drain` |",
		"| 1 | kill | service-0 | 0.00 | 0.10 | 1.45 | 0.00 | — |",
		"| 3 | kill | service-0 | 5.00 | 0.10 | 1.95 | 0.00 | **signal: no such process** |",
		"- 5 acknowledged keys lost",
	)

	// Deterministic, and the same again from the record (Render).
	again := t.TempDir()
	if err := WriteVerify(again, v); err != nil {
		t.Fatal(err)
	}
	fromJSON := t.TempDir()
	if err := results.WriteVerify(fromJSON, v); err != nil {
		t.Fatal(err)
	}
	if err := Render(fromJSON, "verify"); err != nil {
		t.Fatal(err)
	}
	if err := Render(t.TempDir(), "verify"); err == nil {
		t.Errorf("Render without verify.json: no error")
	}
	if err := Render(fromJSON, "summary"); err == nil || !strings.Contains(err.Error(), `no document "summary"`) {
		t.Errorf("Render of an unknown document: %v", err)
	}
	sameTree(t, dir, again)
	sameTree(t, dir, fromJSON)
}

// TestBenchMissedBound: a rate search whose lowest step missed its bound is
// a valid run (the checker judges correctness) whose bench.md says, in the
// summary and in its section, that no rate passed and at which rate.
func TestBenchMissedBound(t *testing.T) {
	t.Parallel()
	b := results.Bench{Header: handHeader(), Scenarios: []results.Scenario{{
		Name: "stress-20k", Kind: "search", Mode: "smoke", RunDir: "runs/20260301-123000-stress-20k",
		Check:         checker.Result{Valid: true, Attempted: 500, Acknowledged: 500, Stored: 500, StatsExact: true, AuditExact: true},
		Perf:          &results.Perf{Seconds: 5, Requests: 500, RequestsPerSec: 100},
		Steps:         []results.Step{{Rate: 100, Achieved: 99, HTTP: results.Percentiles{N: 500, P50: 30, P99: 180, Max: 250}}},
		SearchBoundMS: 50, Valid: true,
	}}}
	if !b.Scenarios[0].MissedBound() {
		t.Fatal("MissedBound() = false for a search whose only step failed")
	}
	dir := t.TempDir()
	if err := WriteBench(dir, b); err != nil {
		t.Fatal(err)
	}
	md := string(readFile(t, filepath.Join(dir, "bench.md")))
	mustContain(t, "bench.md", md,
		"**Latency bound missed** even at the lowest rate of the search: [stress-20k](#scenario-stress-20k).",
		"No rate passed (bound: HTTP p99 at most 50.00 ms, no backlog growth): even the lowest step, 100.0 requests/s, missed it.",
		"| valid |")
	if t.Failed() || strings.Contains(md, "INVALID") {
		t.Errorf("bench.md calls the run invalid:\n%s", md)
	}
}

// TestBenchGeneratorLimited: a search that stopped on a step the load
// generator missed shows the generator's figures per step, labels that
// step generator-limited, not a plain failure, and says so below the table.
func TestBenchGeneratorLimited(t *testing.T) {
	t.Parallel()
	b := results.Bench{Header: handHeader(), Scenarios: []results.Scenario{{
		Name: "single-events", Kind: "search", Mode: "full", RunDir: "runs/20260301-123000-single-events",
		Check: checker.Result{Valid: true, Attempted: 500, Acknowledged: 500, Stored: 500, StatsExact: true, AuditExact: true},
		Perf:  &results.Perf{Seconds: 5, Requests: 500, RequestsPerSec: 100},
		Steps: []results.Step{
			{Rate: 2910, Achieved: 2910, HTTP: results.Percentiles{N: 14550, P50: 1.27, P99: 6.08, Max: 24.38}, HTTPFromSendP99: 5.5,
				SendLagP99: 0.6, SendLagMax: 5.31, GeneratorCPUSeconds: 0.5, GeneratorCPUPerRequestUS: 34.4, ServiceCPUPerRequestUS: 86.2, Pass: true},
			{Rate: 3638, Achieved: 3637, HTTP: results.Percentiles{N: 18185, P50: 1.51, P99: 21.97, Max: 56.67}, HTTPFromSendP99: 7.25,
				SendLagP99: 15.5, SendLagMax: 43.42, GeneratorCPUSeconds: 0.9, GeneratorCPUPerRequestUS: 49.5, ServiceCPUPerRequestUS: 80.1, GeneratorLimited: true},
		},
		BestRate: 2910, SearchBoundMS: 10, Valid: true,
		Ceilings: []results.Ceiling{
			{Name: results.CeilingHTTP, BestRate: 4547, Steps: []results.Step{
				{Rate: 2910, HTTP: results.Percentiles{N: 10, P99: 1.5}, GeneratorCPUPerRequestUS: 30, Pass: true},
				{Rate: 3638, HTTP: results.Percentiles{N: 10, P99: 2.5}, GeneratorCPUPerRequestUS: 31, Pass: true},
				{Rate: 4547, HTTP: results.Percentiles{N: 10, P99: 3.5}, GeneratorCPUPerRequestUS: 32, Pass: true},
				{Rate: 5684, HTTP: results.Percentiles{N: 10, P99: 30}, GeneratorCPUPerRequestUS: 33}}},
			{Name: results.CeilingAppend, BestRate: 2910, Steps: []results.Step{
				{Rate: 2910, HTTP: results.Percentiles{N: 10, P99: 0.5}, GeneratorCPUPerRequestUS: 20, Pass: true}}},
		},
	}}}
	dir := t.TempDir()
	if err := WriteBench(dir, b); err != nil {
		t.Fatal(err)
	}
	md := string(readFile(t, filepath.Join(dir, "bench.md")))
	mustContain(t, "bench.md", md,
		"| Offered req/s | Achieved req/s | Events/s | HTTP p50 | HTTP p99 | p99 from send | HTTP max | Send lag p99 | Send lag max | Generator CPU µs/req | Service CPU µs/req |",
		"| 2,910.0 | 2,910.0 | 0 | 1.27 | 6.08 | 5.50 | 24.38 | 0.60 | 5.31 | 34.4 | 86.2 | 0 | 0.00% | yes |",
		"| 3,638.0 | 3,637.0 | 0 | 1.51 | 21.97 | 7.25 | 56.67 | 15.50 | 43.42 | 49.5 | 80.1 | 0 | 0.00% | no: generator-limited |",
		"Highest passing rate: 2,910.0 requests/s",
		"The search stopped at 3,638.0 requests/s because the load generator, not the target, missed the schedule (send lag p99 15.50 ms, generator CPU 49.5 µs per request)",
		"### Ceilings in the same run",
		"| HTTP: the same generator against a null handler in the harness (200, no work) | 4,547.0 | 3.50 | 32.0 | 4 | 0.64× |",
		"| Append: the service's append path alone (queue.Append on the run's Redis from the harness; no HTTP, no workers) | ≥ 2,910.0 | 0.50 | 20.0 | 1 | ≤ 1.00× |")
	// A ceiling whose lowest step missed shows that step's figures.
	b.Scenarios[0].Ceilings[1] = results.Ceiling{Name: results.CeilingAppend, Steps: []results.Step{
		{Rate: 2910, HTTP: results.Percentiles{N: 10, P99: 236.46}, GeneratorCPUPerRequestUS: 20}}}
	if err := WriteBench(dir, b); err != nil {
		t.Fatal(err)
	}
	md = string(readFile(t, filepath.Join(dir, "bench.md")))
	mustContain(t, "bench.md", md, "| none (2,910.0 missed) | 236.46 | 20.0 | 1 | — |")
	// A step that simply failed is not labelled.
	b.Scenarios[0].Steps[1].GeneratorLimited = false
	if err := WriteBench(dir, b); err != nil {
		t.Fatal(err)
	}
	md = string(readFile(t, filepath.Join(dir, "bench.md")))
	if strings.Contains(md, "| no: generator-limited |") || strings.Contains(md, "The search stopped at") {
		t.Errorf("a plain failed step is labelled generator-limited")
	}
	mustContain(t, "bench.md", md, "| 43.42 | 49.5 | 80.1 | 0 | 0.00% | no |")
}
