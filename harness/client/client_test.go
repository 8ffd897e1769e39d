package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

var env *devenv.Env

// TestMain runs the tests against the devenv's PostgreSQL and Redis, then
// checks that they left no goroutine behind.
func TestMain(m *testing.M) {
	code := devenv.RunTests(m, &env)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestClassify(t *testing.T) {
	t.Parallel()
	hdr := func(v string) http.Header {
		h := http.Header{}
		if v != "" {
			h.Set(client.OutcomeHeader, v)
		}
		return h
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		err    error
		want   history.Type
	}{
		{"200", 200, nil, nil, history.OK},
		{"201", 201, nil, nil, history.OK},
		{"204", 204, hdr("rejected"), nil, history.OK},
		{"200 with a body read error", 200, nil, io.ErrUnexpectedEOF, history.OK},
		{"400", 400, nil, nil, history.Fail},
		{"401", 401, nil, nil, history.Fail},
		{"413", 413, nil, nil, history.Fail},
		{"415", 415, nil, nil, history.Fail},
		{"422", 422, nil, nil, history.Fail},
		{"429", 429, nil, nil, history.Fail},
		{"499", 499, nil, nil, history.Fail},
		{"503 rejected", 503, hdr("rejected"), nil, history.Fail},
		{"503 Rejected, other case", 503, hdr("Rejected"), nil, history.Fail},
		{"503 unknown", 503, hdr("unknown"), nil, history.Info},
		{"503 without header", 503, hdr(""), nil, history.Info},
		{"503 nil header", 503, nil, nil, history.Info},
		{"500", 500, nil, nil, history.Info},
		{"500 rejected header (only 503 counts)", 500, hdr("rejected"), nil, history.Info},
		{"502", 502, nil, nil, history.Info},
		{"504", 504, nil, nil, history.Info},
		{"302", 302, nil, nil, history.Info},
		{"connection refused", 0, nil, &wrapErr{refused}, history.Fail},
		{"connection refused, as text", 0, nil,
			errors.New(`Post "http://127.0.0.1:1/publish?op=3": dial tcp 127.0.0.1:1: connect: connection refused`), history.Fail},
		{"timeout", 0, nil, context.DeadlineExceeded, history.Info},
		{"client timeout, as text", 0, nil,
			errors.New(`Post "http://x/publish": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`), history.Info},
		{"reset", 0, nil, &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, history.Info},
		{"EOF", 0, nil, io.EOF, history.Info},
		{"no status, no error", 0, nil, nil, history.Info},
	} {
		if got := client.Classify(tc.status, tc.header, tc.err); got != tc.want {
			t.Errorf("%s: Classify(%d, %v, %v) = %s, want %s", tc.name, tc.status, tc.header, tc.err, got, tc.want)
		}
	}
}

// wrapErr wraps like *url.Error does, to check errors.Is is used.
type wrapErr struct{ err error }

func (e *wrapErr) Error() string { return "Post: " + e.err.Error() }
func (e *wrapErr) Unwrap() error { return e.err }

// closedURL is a URL on which nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestPublish(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var gotAuth, gotType []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		gotType = append(gotType, r.Header.Get("Content-Type"))
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		switch string(body) {
		case "ok":
			w.Write([]byte(`{"status":"success"}`))
		case "bad":
			w.WriteHeader(422)
			w.Write([]byte(`{"detail":[{"loc":["body","events",0,"timestamp"]}]}`))
		case "full":
			w.Header().Set(client.OutcomeHeader, "rejected")
			w.WriteHeader(503)
		case "maybe":
			w.Header().Set(client.OutcomeHeader, "unknown")
			w.WriteHeader(503)
		case "hang":
			<-r.Context().Done()
		case "reset":
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	ctx := testContext(t, 30*time.Second)
	c := client.New(srv.URL+"/", "s3cret")
	c.HTTP.Timeout = 200 * time.Millisecond
	for _, tc := range []struct {
		body   string
		status int
		typ    history.Type
		errHas string
	}{
		{"ok", 200, history.OK, ""},
		{"bad", 422, history.Fail, "timestamp"},
		{"full", 503, history.Fail, "503"},
		{"maybe", 503, history.Info, "503"},
		{"hang", 0, history.Info, "Timeout"},
		{"reset", 0, history.Info, "EOF"},
	} {
		status, typ, err := c.Publish(ctx, []byte(tc.body))
		if status != tc.status || typ != tc.typ || (tc.errHas == "") != (err == nil) ||
			(err != nil && !strings.Contains(err.Error(), tc.errHas)) {
			t.Errorf("Publish(%s) = %d, %s, %v; want %d, %s, error containing %q", tc.body, status, typ, err, tc.status, tc.typ, tc.errHas)
		}
	}
	mu.Lock()
	for i := range gotAuth {
		if gotAuth[i] != "Bearer s3cret" || gotType[i] != "application/json" {
			t.Errorf("request %d: Authorization %q, Content-Type %q", i, gotAuth[i], gotType[i])
		}
	}
	mu.Unlock()

	status, typ, err := client.New(closedURL(t), "").Publish(ctx, []byte("ok"))
	if status != 0 || typ != history.Fail || err == nil {
		t.Errorf("Publish to a closed port = %d, %s, %v; want 0, fail, an error", status, typ, err)
	}
}

// fakeStats serves /stats from a script of answers (the last one repeats)
// and /ready after a number of 503s.
type fakeStats struct {
	mu        sync.Mutex
	stats     []checker.Stats
	polls     int
	notReady  int
	readyHits atomic.Int64
}

func (f *fakeStats) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/stats":
		s := f.stats[min(f.polls, len(f.stats)-1)]
		f.polls++
		json.NewEncoder(w).Encode(map[string]any{
			"received": s.Received, "unique_processed": s.UniqueProcessed, "duplicated_dropped": s.DuplicatedDropped,
			"queue_depth": s.QueueDepth, "pending": s.Pending, "dead_lettered": s.DeadLettered, "topics": []string{}, "uptime": 1,
		})
	case "/ready":
		if f.readyHits.Add(1) <= int64(f.notReady) {
			w.WriteHeader(503)
			w.Write([]byte(`{"status":"not ready","reason":"redis"}`))
			return
		}
		w.Write([]byte(`{"status":"ready"}`))
	case "/audit/summary":
		w.Write([]byte(`{"total_received":7,"total_queued":7,"total_processed":5,"total_dropped":2,"total_failed":0,"by_topic":{},"by_worker":{}}`))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeStats) pollCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.polls
}

func TestWaitDrained(t *testing.T) {
	t.Parallel()
	f := &fakeStats{stats: []checker.Stats{
		{Received: 1, QueueDepth: 5, Pending: 2},
		{Received: 5, QueueDepth: 0, Pending: 1},
		{Received: 6},   // drained, but received still moving
		{Received: 7},   // again
		{Received: 7},   // stable: done here
		{Received: 999}, // never reached
	}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, "")
	s, took, err := c.WaitDrained(testContext(t, 30*time.Second))
	if polls := f.pollCount(); err != nil || s.Received != 7 || polls != 5 {
		t.Fatalf("WaitDrained = %+v, %v after %d polls; want received 7 after 5 polls", s, err, polls)
	}
	if took < 4*client.DrainPoll {
		t.Fatalf("took %s for 5 polls", took)
	}

	stuck := &fakeStats{stats: []checker.Stats{{Received: 3, QueueDepth: 2}}}
	srv2 := httptest.NewServer(stuck)
	t.Cleanup(srv2.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	s, _, err = client.New(srv2.URL, "").WaitDrained(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "queue_depth 2") || s.Received != 3 {
		t.Fatalf("WaitDrained on a stuck queue = %+v, %v", s, err)
	}

	// A target that does not answer is retried until the deadline.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, _, err := client.New(closedURL(t), "").WaitDrained(ctx2); !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "refused") {
		t.Fatalf("WaitDrained on a dead target: %v", err)
	}
}

func TestReadyAndAudit(t *testing.T) {
	t.Parallel()
	f := &fakeStats{notReady: 3, stats: []checker.Stats{{Received: 2, UniqueProcessed: 1, DuplicatedDropped: 1}}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, "")
	ctx := testContext(t, 30*time.Second)
	var se *client.StatusError
	if err := c.Ready(ctx); !errors.As(err, &se) || se.Status != 503 || !strings.Contains(err.Error(), "redis") {
		t.Fatalf("Ready on a not-ready target: %v", err)
	}
	if _, err := c.WaitReady(ctx); err != nil || f.readyHits.Load() != 4 {
		t.Fatalf("WaitReady: %v after %d polls", err, f.readyHits.Load())
	}
	a, err := c.AuditSummary(ctx)
	if err != nil || a != (checker.Audit{Received: 7, Queued: 7, Processed: 5, Dropped: 2}) {
		t.Fatalf("AuditSummary = %+v, %v", a, err)
	}
	s, err := c.Stats(ctx)
	if err != nil || s.Received != 2 || s.UniqueProcessed != 1 || s.DuplicatedDropped != 1 {
		t.Fatalf("Stats = %+v, %v", s, err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := client.New(closedURL(t), "").WaitReady(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady on a dead target: %v", err)
	}
}

func TestStoredKeysAPI(t *testing.T) {
	t.Parallel()
	// 25 events, pages of 10 (the fake ignores limit), cursors with
	// characters that need escaping.
	type ev struct {
		EventID string `json:"event_id"`
		Topic   string `json:"topic"`
	}
	var all []ev
	for i := range 25 {
		id := fmt.Sprintf("run-e%d", i)
		if i%5 == 0 {
			id = fmt.Sprintf("other-e%d", i)
		}
		all = append(all, ev{EventID: id, Topic: "t" + strconv.Itoa(i%3)})
	}
	var mu sync.Mutex
	var limits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		limits = append(limits, r.URL.Query().Get("limit"))
		mu.Unlock()
		start := 0
		if c := r.URL.Query().Get("cursor"); c != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(c, "a+b/="))
			if err != nil {
				w.WriteHeader(422)
				return
			}
			start = n
		}
		end := min(start+10, len(all))
		var next *string
		if end < len(all) {
			c := "a+b/=" + strconv.Itoa(end)
			next = &c
		}
		json.NewEncoder(w).Encode(map[string]any{"count": len(all), "events": all[start:end], "next_cursor": next})
	}))
	t.Cleanup(srv.Close)
	got, err := client.New(srv.URL, "").StoredKeysAPI(testContext(t, 30*time.Second), "run-e")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 20 || got[history.Key{Topic: "t1", ID: "run-e1"}] != 1 || len(limits) != 3 || limits[0] != "10000" {
		t.Fatalf("got %d keys (%v) in %d pages (limits %v)", len(got), got, len(limits), limits)
	}
}

func TestStoredKeysAPILoop(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"count":1,"events":[{"event_id":"x-e1","topic":"t"}],"next_cursor":"same"}`))
	}))
	t.Cleanup(srv.Close)
	if _, err := client.New(srv.URL, "").StoredKeysAPI(testContext(t, 30*time.Second), "x-e"); err == nil ||
		!strings.Contains(err.Error(), "twice") {
		t.Fatalf("a cursor that never advances: %v", err)
	}
}

// TestStoredKeysDB reads a hand-made events table: with the unique
// constraint every key counts once; without it (a broken target) the
// duplicates must show.
func TestStoredKeysDB(t *testing.T) {
	t.Parallel()
	for _, unique := range []bool{true, false} {
		t.Run(fmt.Sprintf("unique=%v", unique), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, time.Minute)
			dbURL := env.NewDatabase(t)
			conn, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			ddl := `CREATE TABLE events (topic text NOT NULL, event_id text NOT NULL,
				received_at timestamptz NOT NULL, stored_at timestamptz NOT NULL)`
			if unique {
				ddl = strings.Replace(ddl, "stored_at timestamptz NOT NULL", "stored_at timestamptz NOT NULL, UNIQUE (topic, event_id)", 1)
			}
			if _, err := conn.Exec(ctx, ddl); err != nil {
				t.Fatal(err)
			}
			ins := `INSERT INTO events VALUES ($1, $2, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00.25Z')`
			if !unique {
				ins += ` , ($1, $2, '2026-01-01T00:00:00Z', '2026-01-01T00:00:01.5Z')`
			}
			for _, k := range [][2]string{{"a", "r_1-e1"}, {"b", "r_1-e1"}, {"a", "r_1-e2"}, {"a", "rx1-e3"}, {"a", "other-e1"}} {
				if _, err := conn.Exec(ctx, ins, k[0], k[1]); err != nil {
					t.Fatal(err)
				}
			}
			// "_" must not act as a LIKE wildcard: "rx1-e3" is not in run "r_1".
			got, err := client.StoredKeysDB(ctx, dbURL, "r_1-e")
			if err != nil {
				t.Fatal(err)
			}
			n := 1
			if !unique {
				n = 2
			}
			want := map[history.Key]int{{Topic: "a", ID: "r_1-e1"}: n, {Topic: "b", ID: "r_1-e1"}: n, {Topic: "a", ID: "r_1-e2"}: n}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("StoredKeysDB = %v, want %v", got, want)
			}
			lat, err := client.CommitLatencies(ctx, dbURL, "r_1-e", time.Time{}, time.Time{})
			if err != nil || len(lat) != 3*n || lat[0] != 0.25 && lat[0] != 1.5 {
				t.Fatalf("CommitLatencies = %v, %v", lat, err)
			}
			if !unique {
				var ops []history.Op
				rec, _ := history.NewRecorder("")
				inv := rec.Invoke(0, history.FPublish, []history.Key{{Topic: "a", ID: "r_1-e1"}}, "")
				rec.Complete(inv, history.OK, time.Now(), 200, "", "")
				ops = rec.Ops()
				res := checker.Check(ops, checker.Readback{Stored: got, Drained: true})
				if res.Valid || res.Duplicated == 0 {
					t.Fatalf("checker accepted a table with duplicated keys: %+v", res)
				}
			}
		})
	}
	if _, err := client.StoredKeysDB(testContext(t, 10*time.Second), "postgres://nobody@127.0.0.1:1/x?connect_timeout=2", "p"); err == nil {
		t.Fatal("StoredKeysDB on a dead database returned no error")
	}
}

// TestAppliedEntries reads hand-made events and dropped tables: the rows of
// each stream entry (first copies and duplicates alike) make one request
// signature, counted once per entry; rows of another run are left out.
func TestAppliedEntries(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, time.Minute)
	dbURL := env.NewDatabase(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, ddl := range []string{
		`CREATE TABLE events (topic text, event_id text, entry_id text)`,
		`CREATE TABLE dropped (topic text, event_id text, entry_id text)`,
	} {
		if _, err := conn.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	// Entry 1-0: r-e1, r-e2 (first copies). Entry 2-0 and 3-0: the same
	// request appended twice, r-e2 a duplicate each time, r-e3 stored once.
	rows := [][4]string{
		{"events", "a", "r-e1", "1-0"}, {"events", "a", "r-e2", "1-0"},
		{"dropped", "a", "r-e2", "2-0"}, {"events", "a", "r-e3", "2-0"},
		{"dropped", "a", "r-e3", "3-0"}, {"dropped", "a", "r-e2", "3-0"},
		{"events", "a", "other-e1", "4-0"},
	}
	for _, r := range rows {
		if _, err := conn.Exec(ctx, "INSERT INTO "+r[0]+" VALUES ($1, $2, $3)", r[1], r[2], r[3]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := client.AppliedEntries(ctx, dbURL, "r-e")
	if err != nil {
		t.Fatal(err)
	}
	sig := func(ids ...string) string {
		var ks []history.Key
		for _, id := range ids {
			ks = append(ks, history.Key{Topic: "a", ID: id})
		}
		return checker.Signature(ks)
	}
	want := map[string]int{sig("r-e1", "r-e2"): 1, sig("r-e3", "r-e2"): 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("AppliedEntries = %v, want %v", got, want)
	}
}
