package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/service/app"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

var env *devenv.Env

// TestMain runs the package's tests on one PostgreSQL and one Redis, then
// fails if a goroutine outlived them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(withEnv{m}) }

// withEnv is m run by devenv.RunTests, for goleak.
type withEnv struct{ m *testing.M }

func (w withEnv) Run() int { return devenv.RunTests(w.m, &env) }

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
// adjusts the configuration first. A DatabaseURL, RedisURL or StreamPrefix
// that mutate sets is used instead of the fresh one. The service is closed
// in t.Cleanup.
func newTestbed(t *testing.T, mutate func(*config.Config)) *testbed {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL, cfg.RedisURL, cfg.StreamPrefix = "", "", ""
	cfg.InstanceID = "test"
	cfg.ClaimIdle = 2 * time.Second
	cfg.LogLevel = "warn"
	cfg.DrainGrace = 0
	cfg.MemoryLimit = 0 // process-wide: only the test of MEMORY_LIMIT sets one
	if mutate != nil {
		mutate(&cfg)
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = env.NewDatabase(t)
	}
	if cfg.RedisURL == "" {
		cfg.RedisURL = env.Redis.URL()
	}
	if cfg.StreamPrefix == "" {
		cfg.StreamPrefix = env.NewPrefix(t)
	}
	tb := prepareTestbed(t, cfg)
	tb.start()
	return tb
}

// prepareTestbed connects the test's own clients (database pool, Redis
// client, queue) for cfg without starting the service: call start. The
// service, if started, is closed in t.Cleanup.
func prepareTestbed(t *testing.T, cfg config.Config) *testbed {
	t.Helper()
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

// tryStats is stats for a service whose dependencies may be coming back: a
// non-200 answer or a failed request reports false instead of failing.
func (tb *testbed) tryStats() (stats, bool) {
	var s stats
	resp, err := http.Get(tb.url + "/stats")
	if err != nil {
		return s, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, false
	}
	return s, json.NewDecoder(resp.Body).Decode(&s) == nil
}

// drained waits until the queue is empty and returns the stats then. A
// /stats answering 503 meanwhile (a dependency reconnecting) is waited out.
func (tb *testbed) drained() stats {
	tb.t.Helper()
	var s stats
	waitFor(tb.t, 30*time.Second, "queue drained", func() bool {
		var ok bool
		s, ok = tb.tryStats()
		return ok && s.QueueDepth == 0 && s.Pending == 0
	})
	return s
}

// closeService drains and closes the service now (as SIGTERM does) and
// returns Close's error; the cleanup does not close it again.
func (tb *testbed) closeService(ctx context.Context) error {
	tb.closed = true
	return tb.main.Close(ctx)
}

// get fetches path and returns the status, headers and body.
func (tb *testbed) get(path string) (int, http.Header, []byte) {
	tb.t.Helper()
	resp, err := http.Get(tb.url + path)
	if err != nil {
		tb.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// evKey is the deduplication key of an event as the tests see it.
type evKey struct{ Topic, ID string }

// storedKeys returns how many rows each stored key has (at most 1 each, by
// the primary key), for keys of topic (every topic when topic is empty).
func (tb *testbed) storedKeys(topic string) map[evKey]int {
	tb.t.Helper()
	rows, err := tb.db.Query(context.Background(),
		"SELECT topic, event_id FROM events WHERE $1 = '' OR topic = $1", topic)
	if err != nil {
		tb.t.Fatalf("read stored keys: %v", err)
	}
	defer rows.Close()
	out := map[evKey]int{}
	for rows.Next() {
		var k evKey
		if err := rows.Scan(&k.Topic, &k.ID); err != nil {
			tb.t.Fatalf("read stored keys: %v", err)
		}
		out[k]++
	}
	if err := rows.Err(); err != nil {
		tb.t.Fatalf("read stored keys: %v", err)
	}
	return out
}

// metric returns the value of one sample of the service's /metrics, e.g.
// `chronicle_batch_errors_total{kind="data"}`, and whether it is there.
func (tb *testbed) metric(sample string) (float64, bool) {
	resp, err := http.Get(tb.url + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	return metricValue(string(b), sample)
}

// metricValue finds sample in a Prometheus text exposition.
func metricValue(text, sample string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, sample+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

// load publishes from several goroutines until stopped and records every
// request's outcome, in the manner of a Jepsen history: acknowledged (200:
// must be stored), or anything else (may or may not have been queued).
type load struct {
	t      *testing.T
	url    string
	topic  string
	client *http.Client
	halt   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	ok, notOK atomic.Int64 // requests answered 200 / not (errors included)

	mu              sync.Mutex
	acked           map[evKey]bool // keys with at least one acknowledged copy
	attempted       map[evKey]bool // every key sent
	ackedCopies     int64          // event copies in acknowledged requests
	attemptedCopies int64          // event copies in every request sent
	bad             []string       // answers no fault explains (4xx)
}

// startLoad starts publishers goroutines posting batches of batch events of
// topic; every fourth request also carries a copy of an earlier event.
func startLoad(t *testing.T, url, topic string, publishers, batch int) *load {
	l := &load{t: t, url: url, topic: topic, client: &http.Client{Timeout: 20 * time.Second},
		halt: make(chan struct{}), acked: map[evKey]bool{}, attempted: map[evKey]bool{}}
	for g := range publishers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.publisher(g, batch)
		}()
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) publisher(g, batch int) {
	for i := 0; ; i++ {
		select {
		case <-l.halt:
			return
		default:
		}
		var evs []map[string]any
		var keys []evKey
		for j := range batch {
			id := fmt.Sprintf("g%d-%d-%d", g, i, j)
			evs = append(evs, ev(l.topic, id))
			keys = append(keys, evKey{l.topic, id})
		}
		if i%4 == 3 {
			id := fmt.Sprintf("g%d-%d-0", g, i-1)
			evs = append(evs, ev(l.topic, id))
			keys = append(keys, evKey{l.topic, id})
		}
		body, _ := json.Marshal(map[string]any{"events": evs})
		l.mu.Lock()
		for _, k := range keys {
			l.attempted[k] = true
		}
		l.attemptedCopies += int64(len(keys))
		l.mu.Unlock()

		code := 0
		resp, err := l.client.Post(l.url+"/publish", "application/json", bytes.NewReader(body))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		if code == http.StatusOK {
			l.ok.Add(1)
			l.mu.Lock()
			for _, k := range keys {
				l.acked[k] = true
			}
			l.ackedCopies += int64(len(keys))
			l.mu.Unlock()
			continue
		}
		l.notOK.Add(1)
		if code >= 400 && code < 500 {
			l.mu.Lock()
			l.bad = append(l.bad, fmt.Sprintf("publisher %d request %d: status %d", g, i, code))
			l.mu.Unlock()
		}
		// Pace retries while a dependency is away.
		select {
		case <-l.halt:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop stops the publishers and waits for their requests in flight.
func (l *load) stop() {
	l.once.Do(func() { close(l.halt) })
	l.wg.Wait()
}

// waitAcked waits until n more requests than now have been acknowledged.
func (l *load) waitAcked(n int64, what string) {
	l.t.Helper()
	target := l.ok.Load() + n
	waitFor(l.t, 60*time.Second, what, func() bool { return l.ok.Load() >= target })
}

// checkExact stops the load, waits for the queue to drain and checks the
// guarantees: every acknowledged event stored exactly once, nothing stored
// that was never sent, and exact stats.
func checkExact(t *testing.T, tb *testbed, l *load) stats {
	t.Helper()
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) > 0 {
		t.Errorf("%d unexpected answers, first: %s", len(l.bad), l.bad[0])
	}
	s := tb.drained()
	rows := tb.count("SELECT count(*) FROM events")
	if s.Received != s.UniqueProcessed+s.DuplicatedDropped {
		t.Errorf("stats %+v: received != unique_processed + duplicated_dropped", s)
	}
	if s.UniqueProcessed != rows {
		t.Errorf("unique_processed %d, but %d rows", s.UniqueProcessed, rows)
	}
	if d := tb.count("SELECT count(*) FROM dropped"); d != s.DuplicatedDropped {
		t.Errorf("duplicated_dropped %d, but %d dropped rows", s.DuplicatedDropped, d)
	}
	if s.Received < l.ackedCopies || s.Received > l.attemptedCopies {
		t.Errorf("received %d, want between %d acknowledged and %d sent copies", s.Received, l.ackedCopies, l.attemptedCopies)
	}
	if s.DeadLettered != 0 {
		t.Errorf("%d entries dead-lettered", s.DeadLettered)
	}
	stored := tb.storedKeys("")
	lost := 0
	for k := range l.acked {
		if stored[k] != 1 {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged event %v stored %d times", k, stored[k])
			}
		}
	}
	for k := range stored {
		if !l.attempted[k] {
			t.Errorf("stored event %v was never sent", k)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged events lost", lost, len(l.acked))
	}
	if p := tb.count("SELECT count(*) FROM audit_log WHERE action = 'PROCESSED'"); p != rows {
		t.Errorf("%d PROCESSED audit entries for %d rows", p, rows)
	}
	t.Logf("requests: %d acknowledged, %d not; copies: %d acknowledged, %d sent, %d received; %d stored",
		l.ok.Load(), l.notOK.Load(), l.ackedCopies, l.attemptedCopies, s.Received, rows)
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

// lockEvents takes an ACCESS EXCLUSIVE lock on the events table in a
// transaction of its own, so every insert of the workers waits for it (the
// backlog stays queued), and returns unlock, which ends that transaction
// once (later calls return nil); the test's cleanup unlocks it otherwise.
func (tb *testbed) lockEvents(ctx context.Context) (unlock func() error) {
	tb.t.Helper()
	lock, err := tb.db.Begin(ctx)
	mustf(tb.t, err == nil, "begin: %v", err)
	var once sync.Once
	unlock = func() error {
		err := error(nil)
		once.Do(func() { err = lock.Rollback(context.WithoutCancel(ctx)) })
		return err
	}
	tb.t.Cleanup(func() { _ = unlock() })
	_, err = lock.Exec(ctx, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
	mustf(tb.t, err == nil, "lock: %v", err)
	return unlock
}
