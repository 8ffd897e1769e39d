package scenario

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/attack"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// An attack that does nothing, or is answered as it must not be, makes
// the run invalid: against a server that answers 200 to everything, every
// refusal kind is unwanted; against one that is down, nothing is answered
// and no connection is held; a throughput or RSS past its bound is named.
func TestAttackViolations(t *testing.T) {
	t.Parallel()
	s := &Scenario{Attack: &AttackSpec{Rate: 200, Holders: 1, MinThroughputRatio: 0.7, MaxRSSMiB: 300}}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	defer ok.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	run := func(target string) *results.Scenario {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		a := attack.Run(ctx, attack.Config{Target: target, Namespace: "t", Rate: 200, Holders: 1, PageBytes: 1 << 20, Timeout: time.Second})
		a.Windows = 1
		a.BaselineEventsPerSec, a.AttackEventsPerSec, a.ThroughputRatio, a.MinThroughputRatio, a.MaxRSSMiB = 100, 50, 0.5, 0.7, 300
		return &results.Scenario{Attack: &a, Perf: &results.Perf{PeakRSSMiB: 400}}
	}
	v := strings.Join(attackViolations(s, run(ok.URL)), "\n")
	for _, want := range []string{`attack "long key, 1,000 NULs": `, "not 422", "not 415", "0.50 of its 100", "peak RSS 400.0 MiB"} {
		if !strings.Contains(v, want) {
			t.Errorf("against a server that accepts everything: no violation saying %q in:\n%s", want, v)
		}
	}
	if strings.Contains(v, "page of escape-heavy events") || strings.Contains(v, "held connections") {
		t.Errorf("reads answered 200 and held connections are as they must be:\n%s", v)
	}
	v = strings.Join(attackViolations(s, run(down.URL)), "\n")
	for _, want := range []string{"none answered", "0 of 2 held connections opened"} {
		if !strings.Contains(v, want) {
			t.Errorf("against a server that is down: no violation saying %q in:\n%s", want, v)
		}
	}
}
