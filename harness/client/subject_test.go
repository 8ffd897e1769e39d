package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/subject"
)

const foreign = `
name: demo
upstream: {repository: someone/demo}
image: {suite: trixie, packages: [python3-fastapi]}
run: {command: serve}
api:
  ready: auto
  stats: {received: s.received_api, unique_processed: s.unique, duplicated_dropped: duplicate_dropped, quiet: 300ms}
  events: {shape: list, limit: limit, max_limit: 3}
`

// A subject whose /stats reports no queue drains by the fallback: the
// backlog is empty and the counters held still for the quiet period; its
// nested, differently spelt counters are read through the map; its capped
// /events without a cursor is not a complete read-back; and auto readiness
// falls back to /health.
func TestSubjectMapping(t *testing.T) {
	t.Parallel()
	subj, err := subject.Parse([]byte(foreign))
	if err != nil {
		t.Fatal(err)
	}
	var received atomic.Int64
	received.Store(5)
	var events atomic.Int64
	events.Store(2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stats":
			n := received.Load()
			fmt.Fprintf(w, `{"s":{"received_api":%d,"unique":%d},"duplicate_dropped":1}`, n, n-1)
		case "/health":
			fmt.Fprint(w, `{"status":"ok"}`)
		case "/events":
			if r.URL.Query().Get("limit") != "3" {
				http.Error(w, "limit", http.StatusBadRequest)
				return
			}
			fmt.Fprint(w, "[")
			for i := range events.Load() {
				if i > 0 {
					fmt.Fprint(w, ",")
				}
				fmt.Fprintf(w, `{"event_id":"run-e%d","topic":"run-t"}`, i)
			}
			fmt.Fprint(w, "]")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := client.New(srv.URL, "")
	c.Subject = subj
	var backlog atomic.Int64
	backlog.Store(3)
	c.Backlog = func(context.Context) (int64, error) { return backlog.Load(), nil }

	st, has, err := c.ReadStats(context.Background())
	if err != nil || st.Received != 5 || st.UniqueProcessed != 4 || st.DuplicatedDropped != 1 || st.QueueDepth != 3 || !has.Counters() || has.Queue() {
		t.Fatalf("stats %+v %+v %v", st, has, err)
	}
	if err := c.Ready(context.Background()); err != nil {
		t.Errorf("auto readiness must fall back to /health: %v", err)
	}
	if _, err := c.AuditSummary(context.Background()); !errors.Is(err, client.ErrNotOffered) {
		t.Errorf("audit of a subject without one: %v", err)
	}

	// Not drained while the backlog holds events; drained once it is empty
	// and the counters held still for the quiet period.
	go func() {
		time.Sleep(400 * time.Millisecond)
		received.Store(9)
		backlog.Store(0)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	st, took, err := c.WaitDrained(ctx)
	if err != nil || st.Received != 9 {
		t.Fatalf("drain: %+v %v", st, err)
	}
	if took < 600*time.Millisecond || time.Since(start) < 600*time.Millisecond {
		t.Errorf("drained after %v: before the backlog emptied and the counters held still for 300ms", took)
	}

	keys, err := c.StoredKeysAPI(context.Background(), "run-")
	if err != nil || len(keys) != 2 {
		t.Errorf("uncapped page: %v %v", keys, err)
	}
	events.Store(3)
	if _, err := c.StoredKeysAPI(context.Background(), "run-"); !errors.Is(err, client.ErrIncomplete) {
		t.Errorf("a full page without a cursor must be incomplete: %v", err)
	}
}
