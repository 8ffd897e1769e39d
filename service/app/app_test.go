package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
	"github.com/chronicleweaver/chronicleweaver/service/worker"
)

func TestPublishStoresAndCounts(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	mustf(t, tb.publish(ev("a", "1"), ev("a", "2"), ev("b", "1"), ev("a", "1")) == 200, "publish failed")
	mustf(t, tb.publish(ev("b", "1")) == 200, "publish failed")
	s := tb.drained()
	if s.Received != 5 || s.UniqueProcessed != 3 || s.DuplicatedDropped != 2 {
		t.Fatalf("stats = %+v, want received 5, unique 3, dropped 2", s)
	}
	if strings.Join(s.Topics, ",") != "a,b" {
		t.Fatalf("topics = %v, want [a b]", s.Topics)
	}
	if n := tb.count("SELECT count(*) FROM events"); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
	// The first copy committed wins: within one request, the first in order.
	var msg string
	if err := tb.db.QueryRow(context.Background(), "SELECT payload->>'message' FROM events WHERE topic='a' AND event_id='1'").Scan(&msg); err != nil || msg != "m-1" {
		t.Fatalf("payload message = %q (%v)", msg, err)
	}
	var sum struct {
		TotalReceived, TotalQueued, TotalProcessed, TotalDropped, TotalFailed int64
	}
	var raw map[string]any
	tb.getJSON("/audit/summary", &raw)
	sum.TotalReceived = int64(raw["total_received"].(float64))
	sum.TotalProcessed = int64(raw["total_processed"].(float64))
	sum.TotalDropped = int64(raw["total_dropped"].(float64))
	if sum.TotalReceived != 5 || sum.TotalProcessed != 3 || sum.TotalDropped != 2 {
		t.Fatalf("audit summary = %v", raw)
	}
	var audit struct {
		Count int64 `json:"count"`
	}
	for action, want := range map[string]int64{"RECEIVED": 5, "QUEUED": 5, "PROCESSED": 3, "DROPPED": 2, "FAILED": 0} {
		tb.getJSON("/audit?action="+action, &audit)
		if audit.Count != want {
			t.Errorf("audit %s count = %d, want %d", action, audit.Count, want)
		}
	}
}

// Guarantee 2 under contention: N concurrent copies of one key, some in
// batches, give one row and exact counts.
func TestParallelDuplicatesStoreOneRow(t *testing.T) {
	t.Parallel()
	for _, n := range []int{20, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			tb := newTestbed(t, nil)
			var wg sync.WaitGroup
			codes := make([]int, n)
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					codes[i] = tb.publish(ev("race", "the-one"))
				}()
			}
			close(start)
			wg.Wait()
			for i, c := range codes {
				mustf(t, c == 200, "publish %d: status %d", i, c)
			}
			s := tb.drained()
			if s.Received != int64(n) || s.UniqueProcessed != 1 || s.DuplicatedDropped != int64(n-1) {
				t.Fatalf("stats = %+v, want received %d, unique 1, dropped %d", s, n, n-1)
			}
			if rows := tb.count("SELECT count(*) FROM events"); rows != 1 {
				t.Fatalf("%d rows, want 1", rows)
			}
			if p := tb.count("SELECT count(*) FROM audit_log WHERE action='PROCESSED'"); p != 1 {
				t.Fatalf("%d PROCESSED audit entries, want 1", p)
			}
			if d := tb.count("SELECT count(*) FROM audit_log WHERE action='DROPPED'"); d != int64(n-1) {
				t.Fatalf("%d DROPPED audit entries, want %d", d, n-1)
			}
		})
	}
}

// A worker that died after COMMIT and before XACK: its entries are pending
// in its name. The restarted instance re-reads them, the ledger recognises
// them, and nothing is counted twice.
func TestRedeliveryAfterCommitChangesNothing(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, func(c *config.Config) { c.InstanceID = "crashy"; c.WorkerCount = 2 })
	tb.stop() // the service is down; we play the part of its dead worker
	ctx := context.Background()

	var evs []event.Event
	for i := range 30 {
		evs = append(evs, mkEvent("t", fmt.Sprint(i%20)))
	}
	_, err := tb.q.Append(ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: len(evs), Body: event.AppendBatch(nil, evs)})
	mustf(t, err == nil, "append: %v", err)
	consumer := worker.ConsumerName("crashy", 0)
	got, err := tb.q.Read(ctx, consumer, 10, -1)
	mustf(t, err == nil && len(got) == 1, "read: %v (%d entries)", err, len(got))
	st, err := store.Open(ctx, tb.cfg.DatabaseURL, store.Options{})
	mustf(t, err == nil, "open store: %v", err)
	defer st.Close()
	res, err := st.ApplyBatch(ctx, consumer, []store.Entry{{Token: got[0].Token, EntryID: got[0].ID, ReceivedAt: got[0].ReceivedAt, QueuedAt: got[0].QueuedAt(), Events: evs}})
	mustf(t, err == nil && res.Inserted == 20 && res.Dropped == 10, "apply: %v %+v", err, res)
	// ...and here the worker is killed: no XACK.
	before := tb.snapshot()

	tb.start()
	s := tb.drained()
	after := tb.snapshot()
	if before != after {
		t.Fatalf("redelivery changed the database:\nbefore %+v\nafter  %+v", before, after)
	}
	if s.Received != 30 || s.UniqueProcessed != 20 || s.DuplicatedDropped != 10 {
		t.Fatalf("stats = %+v", s)
	}
	if n := tb.count("SELECT count(*) FROM applied_entries"); n != 1 {
		t.Fatalf("%d ledger rows, want 1", n)
	}
}

type dbSnapshot struct {
	Events, Dropped, Audit, Processed, DroppedCount int64
}

func (tb *testbed) snapshot() dbSnapshot {
	return dbSnapshot{
		Events:       tb.count("SELECT count(*) FROM events"),
		Dropped:      tb.count("SELECT count(*) FROM dropped"),
		Audit:        tb.count("SELECT count(*) FROM audit_log"),
		Processed:    tb.count("SELECT coalesce(sum(processed),0)::bigint FROM counters"),
		DroppedCount: tb.count("SELECT coalesce(sum(dropped),0)::bigint FROM counters"),
	}
}

func mkEvent(topic, id string) event.Event {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return event.Event{EventID: id, Topic: topic, Source: "test", Timestamp: ts,
		Payload: []byte(`{"message":"m","timestamp":"2026-01-02T03:04:05Z"}`)}
}

// A poison entry goes to the dead-letter stream with a FAILED audit entry,
// and the queue goes on.
func TestPoisonEntryIsDeadLettered(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	ctx := context.Background()
	// An entry no publisher of ours writes: a body that is not an event batch.
	err := tb.rdb.XAdd(ctx, &redis.XAddArgs{Stream: tb.q.Stream(),
		Values: []any{"t", "poison-token", "r", time.Now().UnixNano(), "n", 1, "e", "not json"}}).Err()
	mustf(t, err == nil, "xadd: %v", err)
	mustf(t, tb.rdb.IncrBy(ctx, tb.cfg.StreamPrefix+"backlog", 1).Err() == nil, "incr backlog")
	mustf(t, tb.publish(ev("ok", "after-poison")) == 200, "publish failed")
	s := tb.drained()
	if s.DeadLettered != 1 || s.UniqueProcessed != 1 || s.Received != 1 {
		t.Fatalf("stats = %+v, want 1 dead-lettered and 1 stored", s)
	}
	var audit struct {
		Count     int64 `json:"count"`
		AuditLogs []struct {
			Action string `json:"action"`
		} `json:"audit_logs"`
	}
	tb.getJSON("/audit?action=FAILED", &audit)
	if audit.Count != 1 || len(audit.AuditLogs) != 1 || audit.AuditLogs[0].Action != "FAILED" {
		t.Fatalf("FAILED audit = %+v", audit)
	}
	n, err := tb.rdb.XLen(ctx, tb.q.DeadStream()).Result()
	mustf(t, err == nil && n == 1, "dead-letter stream length %d (%v)", n, err)
}

// Guarantee 5: over QUEUE_MAX_LEN /publish answers 503 with Retry-After and
// nothing acknowledged is lost once the workers catch up.
func TestBackpressure(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, func(c *config.Config) { c.QueueMaxLen = 100 })
	ctx := context.Background()
	// Hold the workers: a lock on the events table blocks every insert.
	tx, err := tb.db.Begin(ctx)
	mustf(t, err == nil, "begin: %v", err)
	_, err = tx.Exec(ctx, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
	mustf(t, err == nil, "lock: %v", err)
	locked := true
	defer func() {
		if locked {
			_ = tx.Rollback(ctx)
		}
	}()

	var acked []string
	var refused *http.Response
	for i := 0; refused == nil; i++ {
		mustf(t, i < 100, "no 503 after %d publishes of 10 events over a limit of 100", i)
		batch := make([]map[string]any, 10)
		for j := range batch {
			batch[j] = ev("bp", fmt.Sprintf("%d-%d", i, j))
		}
		body, _ := json.Marshal(map[string]any{"events": batch})
		resp, err := http.Post(tb.url+"/publish", "application/json", bytes.NewReader(body))
		mustf(t, err == nil, "publish: %v", err)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			for j := range batch {
				acked = append(acked, fmt.Sprintf("%d-%d", i, j))
			}
		case http.StatusServiceUnavailable:
			refused = resp
		default:
			t.Fatalf("publish %d: status %d", i, resp.StatusCode)
		}
	}
	if ra := refused.Header.Get("Retry-After"); ra == "" {
		t.Fatal("503 without Retry-After")
	}
	mustf(t, len(acked) >= 100, "only %d events acknowledged before 503", len(acked))
	mustf(t, tx.Rollback(ctx) == nil, "unlock")
	locked = false

	s := tb.drained()
	if s.UniqueProcessed != int64(len(acked)) || s.Received != int64(len(acked)) {
		t.Fatalf("stats = %+v, want %d stored", s, len(acked))
	}
	for _, id := range acked {
		if tb.count("SELECT count(*) FROM events WHERE topic='bp' AND event_id=$1", id) != 1 {
			t.Fatalf("acknowledged event %s lost", id)
		}
	}
	// Below the limit again, publishing works.
	mustf(t, tb.publish(ev("bp", "later")) == 200, "publish after drain refused")
}
