package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/chronicleweaver/chronicleweaver/service/app"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

var env *devenv.Env

func TestMain(m *testing.M) { os.Exit(devenv.RunTests(m, &env)) }

// testbed is one isolated service instance: its own database and Redis keys.
type testbed struct {
	t      *testing.T
	cfg    config.Config
	main   *app.Main
	url    string
	db     *pgxpool.Pool
	rdb    *redis.Client
	q      *queue.Queue
	closed bool
}

// newTestbed starts a service on a fresh database and key prefix; mutate
// adjusts the configuration first. The service is closed in t.Cleanup.
func newTestbed(t *testing.T, mutate func(*config.Config)) *testbed {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = env.NewDatabase(t)
	cfg.RedisURL = env.Redis.URL()
	cfg.StreamPrefix = env.NewPrefix(t)
	cfg.InstanceID = "test"
	cfg.ClaimIdle = 2 * time.Second
	cfg.LogLevel = "warn"
	if mutate != nil {
		mutate(&cfg)
	}
	tb := &testbed{t: t, cfg: cfg}
	db, err := pgxpool.New(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	tb.db = db
	ropts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	tb.rdb = redis.NewClient(ropts)
	tb.q = queue.New(tb.rdb, queue.Options{Prefix: cfg.StreamPrefix, MaxLen: cfg.QueueMaxLen})
	t.Cleanup(func() {
		tb.stop()
		db.Close()
		_ = tb.rdb.Close()
	})
	tb.start()
	return tb
}

// start runs the service (again).
func (tb *testbed) start() {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tb.main = &app.Main{Config: tb.cfg, Log: app.NewLogger(testWriter{tb.t}, tb.cfg.LogLevel), Listen: "127.0.0.1:0"}
	if err := tb.main.Run(ctx); err != nil {
		tb.t.Fatalf("start service: %v", err)
	}
	tb.url = tb.main.URL()
	tb.closed = false
}

// stop drains and closes the service.
func (tb *testbed) stop() {
	if tb.closed || tb.main == nil {
		return
	}
	tb.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tb.main.Close(ctx); err != nil {
		tb.t.Errorf("close service: %v", err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// ev builds a valid event.
func ev(topic, id string) map[string]any {
	ts := "2026-01-02T03:04:05.123456Z"
	return map[string]any{
		"event_id": id, "topic": topic, "source": "test", "timestamp": ts,
		"payload": map[string]any{"message": "m-" + id, "timestamp": ts},
	}
}

// publish posts events and returns the status code.
func (tb *testbed) publish(events ...map[string]any) int {
	tb.t.Helper()
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		tb.t.Fatal(err)
	}
	code, _ := tb.post("/publish", "application/json", body, nil)
	return code
}

func (tb *testbed) post(path, ctype string, body []byte, hdr map[string]string) (int, []byte) {
	tb.t.Helper()
	req, err := http.NewRequest(http.MethodPost, tb.url+path, bytes.NewReader(body))
	if err != nil {
		tb.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// getJSON fetches path into v and returns the status code.
func (tb *testbed) getJSON(path string, v any) int {
	tb.t.Helper()
	resp, err := http.Get(tb.url + path)
	if err != nil {
		tb.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			tb.t.Fatalf("GET %s: decode: %v", path, err)
		}
	}
	return resp.StatusCode
}

type stats struct {
	Received          int64    `json:"received"`
	UniqueProcessed   int64    `json:"unique_processed"`
	DuplicatedDropped int64    `json:"duplicated_dropped"`
	Topics            []string `json:"topics"`
	QueueDepth        int64    `json:"queue_depth"`
	Pending           int64    `json:"pending"`
	DeadLettered      int64    `json:"dead_lettered"`
}

func (tb *testbed) stats() stats {
	tb.t.Helper()
	var s stats
	if code := tb.getJSON("/stats", &s); code != http.StatusOK {
		tb.t.Fatalf("GET /stats: %d", code)
	}
	return s
}

// drained waits until the queue is empty and returns the stats then.
func (tb *testbed) drained() stats {
	tb.t.Helper()
	var s stats
	waitFor(tb.t, 30*time.Second, "queue drained", func() bool {
		s = tb.stats()
		return s.QueueDepth == 0 && s.Pending == 0
	})
	return s
}

// count runs a counting query on the test database.
func (tb *testbed) count(sql string, args ...any) int64 {
	tb.t.Helper()
	var n int64
	if err := tb.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	wait := 5 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(wait) // polling interval of a condition with a deadline
		wait = min(2*wait, 100*time.Millisecond)
	}
}

func mustf(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}
