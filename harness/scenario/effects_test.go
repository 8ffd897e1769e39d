package scenario

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// Log effects count JSON lines by "msg", whatever the other fields and
// whatever lines are not JSON.
func TestCountMessages(t *testing.T) {
	t.Parallel()
	log := []byte(`{"time":"t","level":"INFO","msg":"claimed idle entries","entries":3}
not json: a panic trace
{"level":"WARN","msg":"shutdown cut short","err":"worker: drain cut short"}

{"msg":"claimed idle entries"}
{"msg":"claimed idle entries, really"}
`)
	got := map[string]int64{}
	countMessages(log, got)
	if got["claimed idle entries"] != 2 || got["shutdown cut short"] != 1 || len(got) != 3 {
		t.Fatalf("counts %v", got)
	}
}

// metricsEnv serves /metrics for Targets; nothing else is called.
type metricsEnv struct {
	env.Env
	url string
}

func (e metricsEnv) Targets() []string { return []string{e.url} }

// slowed counts the commits at or above two latencies, and only when they
// are at least a tenth of all commits.
func TestSlowCommits(t *testing.T) {
	t.Parallel()
	// 100 commits; cumulative buckets: 60 under 5 ms, 85 under 12 ms.
	// fast more commits under 5 ms are added to every bucket.
	body := func(fast int) string {
		return fmt.Sprintf(`# TYPE chronicle_batch_commit_seconds histogram
chronicle_batch_commit_seconds_bucket{le="0.005"} %d
chronicle_batch_commit_seconds_bucket{le="0.012"} %d
chronicle_batch_commit_seconds_bucket{le="0.05"} %d
chronicle_batch_commit_seconds_bucket{le="+Inf"} %d
chronicle_batch_commit_seconds_sum 1.5
chronicle_batch_commit_seconds_count %d
`, 60+fast, 85+fast, 99+fast, 100+fast, 100+fast)
	}
	fast := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body(fast)) }))
	defer srv.Close()
	s := &Scenario{Nemesis: []Fault{{Fault: "slow", Target: "postgres", Latency: Duration(6 * time.Millisecond)}}}
	in := &effectInputs{ctx: context.Background(), env: metricsEnv{url: srv.URL}}
	// Threshold 12 ms: 15 of 100 at or above the bucket of 12 ms.
	if n, err := in.slowCommits(s); err != nil || n != 15 {
		t.Fatalf("slowCommits = %d, %v; want 15", n, err)
	}
	fast = 900 // the same 15 slow ones are under a tenth of the commits now
	if n, err := in.slowCommits(s); err != nil || n != 0 {
		t.Fatalf("slowCommits = %d, %v with 1000 commits; want 0", n, err)
	}
	if _, err := in.slowCommits(&Scenario{}); err == nil {
		t.Fatal("slowCommits of a scenario without a slow link: no error")
	}
	// Effects not shown or not measured are the verdict's lines.
	lines := effectViolations([]results.Effect{{Name: "a", Shown: true, Count: 1}, {Name: "b"}, {Name: "c", NotMeasured: "no log"},
		{Name: "d", Informative: true, NotMeasured: "foreign"}})
	if len(lines) != 2 {
		t.Fatalf("violations %q: want b not seen and c not measured", lines)
	}
}
