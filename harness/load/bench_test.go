package load_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/load"
)

// BenchmarkOpenNull measures the generator's own cost per request: the
// open model at 1,000 and 4,000 req/s, with the connections unbounded and capped at 64, for 2 s per iteration against a null handler
// (200, no work) in this process, single-event requests as single-events
// sends them, the history written to a file as a run writes it. Reported
// per request: CPU µs of the process (generator, history and the null
// handler; the handler's share is the same before and after a change to
// the generator) and allocations.
func BenchmarkOpenNull(b *testing.B) {
	for _, rate := range []float64{1000, 4000} {
		for _, conns := range []int{0, 64} {
			b.Run(fmt.Sprintf("rate=%.0f/maxconns=%d", rate, conns), func(b *testing.B) { benchOpenNull(b, rate, conns) })
		}
	}
}

// benchOpenNull is one case of BenchmarkOpenNull: maxConns caps the
// connections (Config.MaxConns; 0: as many as the schedule needs).
func benchOpenNull(b *testing.B, rate float64, maxConns int) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	b.Cleanup(srv.Close)
	src, err := gen.New(gen.Config{Seed: 1, RunID: "bench", DuplicateRatio: 0.3, Topics: 10, EventsPerRequest: 1, PayloadBytes: 64})
	if err != nil {
		b.Fatal(err)
	}
	var reqs int64
	var cpu time.Duration
	var mallocs uint64
	var lagP99 time.Duration
	for i := 0; b.Loop(); i++ {
		rec, err := history.NewRecorder(filepath.Join(b.TempDir(), "history.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		sum, err := load.Run(b.Context(), load.Config{Targets: []string{srv.URL}, Source: src, History: rec,
			MaxConns: maxConns, Model: load.Model{Kind: load.Open, Rate: rate, Duration: 2 * time.Second}})
		runtime.ReadMemStats(&m1)
		if err != nil {
			b.Fatal(err)
		}
		_ = rec.Close()
		reqs += sum.Requests
		cpu += sum.CPU
		mallocs += m1.Mallocs - m0.Mallocs
		lagP99 = max(lagP99, p99(sum.SendLags))
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(reqs), "cpu-us/req")
	b.ReportMetric(float64(mallocs)/float64(reqs), "allocs/req")
	b.ReportMetric(float64(lagP99)/1e6, "worst-lag-p99-ms")
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[(99*len(s)+99)/100-1]
}
