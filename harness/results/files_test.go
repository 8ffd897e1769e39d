package results

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
)

func handHeader() Header {
	return Header{
		Commit: "v0.1.0-3-gabc1234-dirty", Date: time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC), Command: "make bench",
		Machine: Machine{CPUs: 8, CPUModel: "Test CPU @ 3.00GHz", MemoryMB: 32000, OS: "linux/amd64, kernel 6.1.0"},
		Go:      "go1.26.8", Postgres: "PostgreSQL 17.2", Redis: "7.4.1", Backend: "local",
		Settings: map[string]string{"WORKER_COUNT": "4", "BATCH_SIZE": "100"}, DurableDB: true,
	}
}

// handBench is a measured run with raw latencies, a rate search and an
// invalid run.
func handBench(t *testing.T) Bench {
	t.Helper()
	lat := make([]float64, 5000)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range lat {
		lat[i] = 5 + rng.ExpFloat64()*20
	}
	return Bench{
		Header: handHeader(),
		Scenarios: []Scenario{
			{
				Name: "seed-k6", Kind: "bench", Mode: Full, RunDir: "runs/seed-k6", Config: map[string]any{"users": 10.0},
				Check: checker.Result{Valid: true, Attempted: 6000, Acknowledged: 6000, Stored: 6000, StatsExact: true, AuditExact: true},
				Perf: &Perf{Seconds: 30, Requests: 8520, RequestsPerSec: 284, EventsAcked: 8520, EventsPerSec: 284,
					HTTP: PercentilesOf(lat), Commit: Percentiles{N: 6000, P50: 3.25, P99: 12.5}},
				Published: map[string]float64{"events_per_second": 221.13},
				Series:    Series(handHistory(t), time.Second),
				Latencies: lat,
				Valid:     true,
			},
			{
				Name: "throughput", Kind: "search", Mode: Smoke,
				Steps:    []Step{{Rate: 100, Achieved: 100, HTTP: Percentiles{N: 500, P50: 10, P99: 40, Max: 60}, Pass: true}},
				BestRate: 100, SearchBoundMS: 100, Baseline: &Baseline{Events: 200000, Seconds: 4, EventsPerSec: 50000, Ratio: 0.4},
				Valid: true,
			},
			{Name: "broken-run", Kind: "bench", Mode: Full, Check: checker.Result{Lost: 2, Violations: []string{"2 acknowledged keys lost"}}},
		},
	}
}

func TestBenchRoundTrip(t *testing.T) {
	t.Parallel()
	b := handBench(t)
	dir := t.TempDir()
	if err := WriteBench(dir, b); err != nil {
		t.Fatal(err)
	}
	if b.Scenarios[0].Distribution != nil {
		t.Errorf("WriteBench modified its argument")
	}
	js := readFile(t, filepath.Join(dir, BenchFile))
	if !strings.HasPrefix(js, "{\n  \"header\": {\n    \"commit\": \"v0.1.0-3-gabc1234-dirty\",") {
		t.Errorf("bench.json does not start with the header: %q", js[:min(len(js), 80)])
	}
	got, err := ReadBench(filepath.Join(dir, BenchFile))
	if err != nil {
		t.Fatal(err)
	}
	want := b
	want.Scenarios = append([]Scenario(nil), b.Scenarios...)
	for i := range want.Scenarios {
		s := &want.Scenarios[i]
		if len(s.Latencies) > 0 {
			s.Distribution = DistributionOf(s.Latencies)
		}
		s.Latencies = nil // not in the JSON
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadBench(WriteBench(b)) differs from b:\ngot  %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(Summarised(b).Scenarios[0].Distribution, want.Scenarios[0].Distribution) {
		t.Errorf("Summarised does not summarise the latencies as WriteBench does")
	}
	if _, err := ReadBench(filepath.Join(dir, "missing.json")); err == nil {
		t.Errorf("ReadBench of a missing file: no error")
	}
}

func TestVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v := Verify{
		Header: handHeader(),
		Scenarios: []Scenario{{
			Name: "crash-service", Kind: "check", Mode: Smoke, RunDir: "runs/crash-service",
			Check:  checker.Result{Valid: true, Attempted: 4200, Acknowledged: 4100, Stored: 4150, Recovered: 50, StatsExact: true, AuditExact: true},
			Faults: []Fault{{Kind: "kill", Target: "service-0", At: t0.Add(2 * time.Second), Held: 0.1, ToReady: 1.45, ToDrained: -1, Error: "boom"}},
			// Configs are read back as JSON values.
			Config:     map[string]any{"name": "crash-service", "nemesis": []any{map[string]any{"fault": "kill"}}},
			MaxToReady: 1.45, DrainTime: 0.42, Valid: true,
		}},
		PlantedBugs: []PlantedBug{{Bug: "ack-before-commit", What: "XACK before COMMIT", Scenario: "crash-service", Caught: true,
			Violations: []string{"3 acknowledged keys lost"}, RunDir: "runs/x"}},
	}
	dir := t.TempDir()
	if err := WriteVerify(dir, v); err != nil {
		t.Fatal(err)
	}
	back, err := ReadVerify(filepath.Join(dir, VerifyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Errorf("ReadVerify(WriteVerify(v)) differs from v:\ngot  %+v\nwant %+v", back, v)
	}
}

func TestPropertiesSorted(t *testing.T) {
	t.Parallel()
	ps := []Property{
		{Property: "set", Bug: "no-ledger", Checks: 3, Failed: true},
		{Property: "set", Checks: 25},
		{Property: "racing", Bug: "select-then-insert", Checks: 2, Failed: true, ShrunkSteps: 4, Example: "publish a\npublish a"},
		{Property: "racing", Checks: 25},
		{Property: "racing", Bug: "ack-before-commit", Checks: 7, Failed: true},
	}
	dir := t.TempDir()
	p := Properties{Header: handHeader(), Properties: ps}
	if err := WriteProperties(dir, p); err != nil {
		t.Fatal(err)
	}
	if p.Properties[0].Bug != "no-ledger" {
		t.Errorf("WriteProperties modified its argument")
	}
	back, err := ReadProperties(filepath.Join(dir, PropertiesFile))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range back.Properties {
		order = append(order, r.Property+"/"+r.Bug)
	}
	want := []string{"racing/", "set/", "racing/ack-before-commit", "racing/select-then-insert", "set/no-ledger"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("properties.json rows %v, want %v", order, want)
	}
	if !reflect.DeepEqual(back.Properties, SortProperties(ps)) || !reflect.DeepEqual(back.Header, p.Header) {
		t.Errorf("ReadProperties(WriteProperties(p)) = %+v", back)
	}
}

func TestWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "x.md")
	for _, data := range []string{"first\n", "second\n"} {
		if err := WriteFile(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, path); got != data {
			t.Errorf("after WriteFile(%q) the file holds %q", data, got)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("WriteFile left %d files (%v), want 1", len(entries), err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", st.Mode(), err)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x.md"), nil); err == nil {
		t.Errorf("WriteFile into a missing folder: no error")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
