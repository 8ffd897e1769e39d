package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// handSoak is a synthetic soak record: 20 minutes sampled every 15 s; RSS,
// goroutines and Redis memory flat, ledger rows growing 60 % over the hour
// after warm-up, the backlog recorded only, latency per minute flat.
func handSoak() results.Soak {
	smp := &results.SoakSamples{Every: 15, Taken: 80, Failed: 3, Errors: []string{"redis used_memory: connection refused"}}
	add := func(name, unit string, flat bool, f func(at float64) float64, step float64) {
		sr := results.SoakSeries{Name: name, Unit: unit, Flat: flat}
		for at := 0.0; at <= 1200; at += step {
			sr.Samples = append(sr.Samples, results.Sample{At: at, Value: f(at)})
		}
		smp.Series = append(smp.Series, sr)
	}
	add(results.SoakRSS, "bytes", true, func(at float64) float64 { return 64 << 20 }, 15)
	add(results.SoakGoroutines, "count", true, func(at float64) float64 { return 40 + float64(int(at)%30)/15 }, 15)
	add(results.SoakRedisMemory, "bytes", true, func(at float64) float64 { return 8 << 20 }, 15)
	add(results.SoakLedgerRows, "count", true, func(at float64) float64 { return 10000 * (1 + 0.6*at/3600) }, 15)
	add(results.SoakBacklog, "count", false, func(at float64) float64 { return float64(int(at) % 100) }, 15)
	add(results.SoakEventsBytes, "bytes", false, func(at float64) float64 { return at * 1e5 }, 15)
	add(results.SoakHTTPP99Quiet, "ms", true, func(at float64) float64 { return 12 }, 60)
	return results.Soak{
		Header: handHeader(), WarmUp: 300, MaxDrift: 0.1, LatencyMaxDrift: 0.5, FlatnessJudged: true,
		Scenario: results.Scenario{Name: "soak", Kind: "check", Mode: results.Full, RunDir: "runs/x-soak", Valid: true, Soak: smp},
	}
}

func TestWriteSoak(t *testing.T) {
	t.Parallel()
	s := handSoak()
	s.Judge()
	if s.Pass || len(s.Reasons) != 1 || !strings.HasPrefix(s.Reasons[0], "ledger_rows drifts: slope 6000 count/h") {
		t.Fatalf("Judge: pass %v, reasons %q; want one reason, ledger_rows drifting at 6000/h", s.Pass, s.Reasons)
	}
	dir := t.TempDir()
	if err := results.WriteSoak(dir, s); err != nil {
		t.Fatal(err)
	}
	// Rendered from the JSON, as make soak and chronicle report --md soak do.
	if err := Render(dir, "soak"); err != nil {
		t.Fatal(err)
	}
	md := string(readFile(t, filepath.Join(dir, "soak.md")))
	mustContain(t, "soak.md", md, headerStrings()...)
	mustContain(t, "soak.md", md,
		"# ChronicleWeaver soak\n",
		"**FAIL**:",
		"- ledger\\_rows drifts: slope 6000 count/h",
		"| `service_rss_bytes` | MiB | 81 | 64.00 | 0.00 | 0.00% | 10.00% | flat |",
		"| `ledger_rows` | count | 81 | ",
		"| **drifts** |",
		"| `backlog` | count | 81 | ",
		"| — | recorded only |",
		"| `http_p99_quiet_ms` | ms | 21 | 12.00 | 0.00 | 0.00% | 50.00% | flat |",
		"Sampled every 15 s: 80 rounds, 3 readings failed",
		"- redis used\\_memory: connection refused",
		"![soak: service RSS and Redis used memory](plots/soak-memory.png)",
		"![soak: HTTP latency per minute](plots/soak-latency.png)",
	)
	for _, p := range []string{"memory", "goroutines", "tables", "latency"} {
		b := readFile(t, filepath.Join(dir, "plots", "soak-"+p+".png"))
		if !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("plots/soak-%s.png is no PNG", p)
		}
	}
	// The same record renders the same bytes.
	again := t.TempDir()
	if err := WriteSoak(again, s); err != nil {
		t.Fatal(err)
	}
	if b := readFile(t, filepath.Join(again, "soak.md")); !bytes.Equal(b, []byte(md)) {
		t.Error("soak.md differs between two renderings of one record")
	}

	// Flat ledger and a valid run: PASS. An invalid run fails whatever
	// its series.
	s = handSoak()
	for i := range s.Scenario.Soak.Series {
		if sr := &s.Scenario.Soak.Series[i]; sr.Name == results.SoakLedgerRows {
			for j := range sr.Samples {
				sr.Samples[j].Value = 10000
			}
		}
	}
	s.Judge()
	if !s.Pass {
		t.Errorf("flat series, valid run: reasons %q, want pass", s.Reasons)
	}
	s.Scenario.Valid, s.Scenario.Violations = false, []string{"2 acknowledged keys lost"}
	s.Judge()
	if s.Pass || !strings.Contains(strings.Join(s.Reasons, ";"), "2 acknowledged keys lost") {
		t.Errorf("invalid run: pass %v, reasons %q", s.Pass, s.Reasons)
	}

	// A smoke run: drifts recorded, not judged; a series without samples
	// fails it still.
	s = handSoak()
	s.FlatnessJudged = false
	s.Judge()
	if !s.Pass || len(s.Unjudged) != 1 || !strings.HasPrefix(s.Unjudged[0], "ledger_rows drifts") {
		t.Errorf("smoke: pass %v, reasons %q, unjudged %q; want pass with the ledger's drift recorded", s.Pass, s.Reasons, s.Unjudged)
	}
	dir = t.TempDir()
	if err := WriteSoak(dir, s); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "smoke soak.md", string(readFile(t, filepath.Join(dir, "soak.md"))),
		"**PASS (smoke)**", "- ledger\\_rows drifts", "| fitted (smoke: not judged) |")
	s.Scenario.Soak.Series[2].Samples = nil // Redis memory never read
	s.Judge()
	if s.Pass || len(s.Reasons) != 1 || s.Reasons[0] != "redis_used_memory_bytes: no samples" {
		t.Errorf("smoke without Redis samples: pass %v, reasons %q", s.Pass, s.Reasons)
	}
	if _, err := os.Stat(filepath.Join(dir, "plots", "soak-tables.png")); err != nil {
		t.Error(err)
	}
}
