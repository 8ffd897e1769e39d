package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/service/api"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
	"github.com/chronicleweaver/chronicleweaver/service/metrics"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

var env *devenv.Env

// TestMain runs the package's tests on one PostgreSQL and one Redis, then
// fails if a goroutine outlived them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(withEnv{m}) }

// withEnv is m run by devenv.RunTests, for goleak.
type withEnv struct{ m *testing.M }

func (w withEnv) Run() int { return devenv.RunTests(w.m, &env) }

// newServer serves an api.Server on a fresh database and key prefix (no
// workers: what is published stays in the stream).
func newServer(t *testing.T) (*api.Server, *httptest.Server, *queue.Queue) {
	t.Helper()
	return newServerWith(t, nil)
}

// newServerWith is newServer with its options changed by opts (nil: none).
func newServerWith(t *testing.T, opts func(*api.Options)) (*api.Server, *httptest.Server, *queue.Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, env.NewDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(ctx, env.Redis.URL(), queue.Options{Prefix: env.NewPrefix(t), MaxLen: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	if err := q.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	o := api.Options{MaxBatch: 100, MaxBodyBytes: 1 << 20, RetryAfter: 2 * time.Second, Workers: 1}
	if opts != nil {
		opts(&o)
	}
	s := api.New(o, q, st, metrics.New(), slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs, q
}

func request(t *testing.T, method, url string, body []byte) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, url, b, err)
	}
	return resp, v
}

// Drain (what Main.Close calls first): /ready answers 503 and /publish is
// refused with 503, Retry-After and nothing queued; reads keep working.
func TestDrainRefusesPublishAndReady(t *testing.T) {
	t.Parallel()
	s, hs, q := newServer(t)
	ctx := context.Background()
	body := []byte(`{"events":[{"event_id":"1","topic":"t","source":"s","timestamp":"2026-01-01T00:00:00Z",` +
		`"payload":{"message":"m","timestamp":"2026-01-01T00:00:00Z"}}]}`)

	resp, v := request(t, http.MethodGet, hs.URL+"/ready", nil)
	if resp.StatusCode != http.StatusOK || v["status"] != "ready" {
		t.Fatalf("/ready before Drain: %d %v", resp.StatusCode, v)
	}
	resp, v = request(t, http.MethodPost, hs.URL+"/publish", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/publish before Drain: %d %v", resp.StatusCode, v)
	}
	before, err := q.Depth(ctx)
	if err != nil || before.Entries != 1 || before.Backlog != 1 {
		t.Fatalf("depth after one publish: %+v (%v)", before, err)
	}

	s.Drain()

	resp, v = request(t, http.MethodGet, hs.URL+"/ready", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || v["reason"] != "draining" {
		t.Fatalf("/ready while draining: %d %v", resp.StatusCode, v)
	}
	resp, v = request(t, http.MethodPost, hs.URL+"/publish", body)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/publish while draining: %d %v", resp.StatusCode, v)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After = %q, want 2", ra)
	}
	if o := resp.Header.Get(api.OutcomeHeader); o != "rejected" {
		t.Errorf("%s = %q, want rejected", api.OutcomeHeader, o)
	}
	after, err := q.Depth(ctx)
	if err != nil || after != before {
		t.Fatalf("a publish refused while draining changed the queue: %+v -> %+v (%v)", before, after, err)
	}
	for _, path := range []string{"/health", "/stats", "/events"} {
		if resp, v := request(t, http.MethodGet, hs.URL+path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s while draining: %d %v", path, resp.StatusCode, v)
		}
	}
}

// While the workers cannot apply (PostgreSQL's disk is full), /ready
// answers 503 with the reason the workers give, and 200 again once they can.
func TestReadySaysWhyWorkersAreBlocked(t *testing.T) {
	t.Parallel()
	var why atomic.Value
	why.Store("")
	_, hs, _ := newServerWith(t, func(o *api.Options) { o.Blocked = func() string { return why.Load().(string) } })
	if resp, v := request(t, http.MethodGet, hs.URL+"/ready", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/ready, workers not blocked: %d %v", resp.StatusCode, v)
	}
	const reason = "postgres disk full: batches refused (SQLSTATE 53100), retrying until space is freed"
	why.Store(reason)
	if resp, v := request(t, http.MethodGet, hs.URL+"/ready", nil); resp.StatusCode != http.StatusServiceUnavailable || v["reason"] != reason {
		t.Fatalf("/ready, workers blocked: %d %v, want 503 with reason %q", resp.StatusCode, v, reason)
	}
	why.Store("")
	if resp, v := request(t, http.MethodGet, hs.URL+"/ready", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/ready, workers unblocked: %d %v", resp.StatusCode, v)
	}
}
