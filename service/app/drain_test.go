package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

// rawConn is an HTTP/1.1 client connection written by hand, so a test can
// stop in the middle of a request.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	mustf(t, err == nil, "dial %s: %v", addr, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	return &rawConn{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	_, err := c.conn.Write([]byte(s))
	mustf(c.t, err == nil, "write: %v", err)
}

// readResponse reads one response and its body.
func (c *rawConn) readResponse(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.r, &http.Request{Method: method})
	mustf(c.t, err == nil, "read response: %v", err)
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp, b.String()
}

// tryResponse reads one response and returns its status and body, or 0 when
// the connection ended without one.
func (c *rawConn) tryResponse(method string) (int, string) {
	resp, err := http.ReadResponse(c.r, &http.Request{Method: method})
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp.StatusCode, b.String()
}

// SIGTERM-style drain (Main.Close): a request in flight finishes, new ones
// are not acknowledged, the workers apply the backlog, and Close returns nil
// with every acknowledged event in PostgreSQL.
func TestCloseDrainsBacklogAndRefusesNewRequests(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, func(c *config.Config) { c.WorkerCount = 2; c.BatchSize = 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Hold the workers: a lock on the events table blocks every insert, so
	// the backlog is still there when Close starts.
	unlock := tb.lockEvents(ctx)

	var acked []string
	for i := range 20 {
		var evs []map[string]any
		for j := range 10 {
			evs = append(evs, ev("drain", fmt.Sprintf("%d-%d", i, j)))
			acked = append(acked, fmt.Sprintf("%d-%d", i, j))
		}
		mustf(t, tb.publish(evs...) == 200, "publish %d refused", i)
	}
	d, err := tb.q.Depth(ctx)
	mustf(t, err == nil && d.Backlog == 200, "backlog before Close = %+v (%v), want 200", d, err)

	addr := tb.main.Addr()
	// A publish in flight: its handler is reading the body (the 100 Continue
	// proves it started, so it passed the draining check) when Close starts.
	inflight := dialRaw(t, addr)
	body, _ := json.Marshal(map[string]any{"events": []map[string]any{ev("drain", "in-flight")}})
	inflight.write(fmt.Sprintf("POST /publish HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(body)))
	line, err := inflight.r.ReadString('\n')
	mustf(t, err == nil && strings.HasPrefix(line, "HTTP/1.1 100"), "want 100 Continue, got %q (%v)", line, err)
	_, _ = inflight.r.ReadString('\n') // the blank line after the interim response
	acked = append(acked, "in-flight")

	// Two requests whose headers are incomplete when Close starts. The
	// kernel accepts connections in order, so once a later connection was
	// answered these two were accepted by the server.
	lateReady, latePublish := dialRaw(t, addr), dialRaw(t, addr)
	lateReady.write("GET /ready HTTP/1.1\r\nHost: test\r\n")
	lateBody, _ := json.Marshal(map[string]any{"events": []map[string]any{ev("drain", "late")}})
	latePublish.write(fmt.Sprintf("POST /publish HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", len(lateBody)))
	marker := dialRaw(t, addr)
	marker.write("GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
	resp, _ := marker.readResponse(http.MethodGet)
	mustf(t, resp.StatusCode == 200, "/health: %d", resp.StatusCode)

	closed := make(chan error, 1)
	go func() { closed <- tb.closeService(ctx) }()
	// Close drains the API before it closes the listener: once a new
	// connection is refused, the drain has begun and new publishes are
	// refused at the door.
	waitFor(t, 10*time.Second, "the listener closed", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		_ = c.Close()
		return false
	})

	// Requests that arrive once the drain began are never acknowledged:
	// net/http drops a request whose headers complete after Shutdown
	// started (the connection closes without an answer), and the API
	// answers 503 to one that reaches it after Drain. (Drain's 503s are
	// checked directly on api.Server in service/api.)
	lateReady.write("\r\n")
	if code, text := lateReady.tryResponse(http.MethodGet); code == http.StatusOK {
		t.Fatalf("/ready during Close: 200 %s", text)
	}
	latePublish.write("\r\n" + string(lateBody))
	if code, text := latePublish.tryResponse(http.MethodPost); code != 0 && code != http.StatusServiceUnavailable {
		t.Fatalf("/publish during Close: %d %s, want no answer or 503", code, text)
	}

	inflight.write(string(body))
	resp, text := inflight.readResponse(http.MethodPost)
	mustf(t, resp.StatusCode == http.StatusOK, "publish in flight when Close started: %d %s", resp.StatusCode, text)

	// The workers cannot finish while the lock holds.
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while the backlog could not be applied", err)
	default:
	}
	mustf(t, unlock() == nil, "unlock")

	select {
	case err := <-closed:
		mustf(t, err == nil, "Close: %v", err)
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}

	d, err = tb.q.Depth(ctx)
	mustf(t, err == nil, "depth: %v", err)
	if d.Backlog != 0 || d.Pending != 0 || d.Entries != 0 {
		t.Fatalf("after Close: %+v, want an empty queue", d)
	}
	stored := tb.storedKeys("drain")
	for _, id := range acked {
		if stored[evKey{"drain", id}] != 1 {
			t.Errorf("acknowledged event %s not stored", id)
		}
	}
	mustf(t, stored[evKey{"drain", "late"}] == 0, "a publish that arrived during Close was stored")
	mustf(t, len(stored) == len(acked), "%d events stored, want %d", len(stored), len(acked))
}

// A backlog appended while no service runs is applied by a service that is
// closed right after it started: Close waits for the workers to drain it.
func TestCloseRightAfterStartDrainsPreloadedBacklog(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()
	cfg.DatabaseURL, cfg.RedisURL, cfg.StreamPrefix = env.NewDatabase(t), env.Redis.URL(), env.NewPrefix(t)
	cfg.InstanceID, cfg.WorkerCount, cfg.BatchSize, cfg.LogLevel = "preload", 2, 1, "warn"
	tb := prepareTestbed(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mustf(t, tb.q.Setup(ctx) == nil, "setup queue")

	const entries, perEntry = 60, 10
	for i := range entries {
		var evs []event.Event
		for j := range perEntry {
			evs = append(evs, mkEvent("preload", fmt.Sprint((i*perEntry+j)%500))) // 100 duplicates
		}
		_, err := tb.q.Append(ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: len(evs), Body: event.AppendBatch(nil, evs)})
		mustf(t, err == nil, "append: %v", err)
	}
	tb.start()
	mustf(t, tb.closeService(ctx) == nil, "Close returned an error")

	d, err := tb.q.Depth(ctx)
	mustf(t, err == nil, "depth: %v", err)
	if d.Backlog != 0 || d.Pending != 0 || d.Entries != 0 {
		t.Fatalf("after Close: %+v, want an empty queue", d)
	}
	if n := tb.count("SELECT count(*) FROM events WHERE topic = 'preload'"); n != 500 {
		t.Fatalf("%d rows, want 500", n)
	}
	if n := tb.count("SELECT coalesce(sum(dropped), 0)::bigint FROM counters"); n != entries*perEntry-500 {
		t.Fatalf("%d dropped, want %d", n, entries*perEntry-500)
	}
	if n := tb.count("SELECT count(*) FROM applied_entries"); n != entries {
		t.Fatalf("%d ledger rows, want %d", n, entries)
	}
}

// With DRAIN_GRACE, a client sees the drain over HTTP: /ready answers 503
// and publishes are refused as "rejected" before the listener closes.
func TestDrainGraceShowsNotReady(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, func(c *config.Config) { c.DrainGrace = 3 * time.Second })
	closed := make(chan error, 1)
	go func() { closed <- tb.closeService(context.Background()) }()
	waitFor(t, 5*time.Second, "/ready to answer 503", func() bool {
		code, _, _ := tb.get("/ready")
		return code == http.StatusServiceUnavailable
	})
	code, _, _ := tb.get("/health")
	mustf(t, code == http.StatusOK, "/health during drain: %d", code)
	req, _ := http.NewRequest(http.MethodPost, tb.url+"/publish", strings.NewReader(`{"events":[]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	mustf(t, err == nil, "publish during drain: %v", err)
	resp.Body.Close()
	mustf(t, resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Chronicle-Outcome") == "rejected",
		"publish during drain: %d %q", resp.StatusCode, resp.Header.Get("Chronicle-Outcome"))
	select {
	case err := <-closed:
		mustf(t, err == nil, "close: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
}
