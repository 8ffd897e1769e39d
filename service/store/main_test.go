package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/service/devenv"
	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

var env *devenv.Env

// TestMain runs the package's tests on one PostgreSQL and one Redis, then
// fails if a goroutine outlived them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(withEnv{m}) }

// withEnv is m run by devenv.RunTests, for goleak.
type withEnv struct{ m *testing.M }

func (w withEnv) Run() int { return devenv.RunTests(w.m, &env) }

// methods are the batch upsert methods; every conformance case runs on each.
var methods = []string{store.MethodUnnest, store.MethodCopy}

// openStore opens a store on url, closed in tb.Cleanup.
func openStore(tb testing.TB, url, method string) *store.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, url, store.Options{Method: method})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(st.Close)
	return st
}

// newStore opens a store with method on a fresh, migrated database.
func newStore(tb testing.TB, method string) *store.Store {
	tb.Helper()
	st := openStore(tb, env.NewDatabase(tb), method)
	if _, err := st.Migrate(context.Background()); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return st
}

var entrySeq atomic.Int64

// mkEntry builds an entry with a fresh stream entry ID.
func mkEntry(token string, evs ...event.Event) store.Entry {
	now := time.Now().UTC()
	return store.Entry{
		Token:      token,
		EntryID:    fmt.Sprintf("%d-%d", now.UnixMilli(), entrySeq.Add(1)),
		ReceivedAt: now,
		QueuedAt:   now,
		Events:     evs,
	}
}

// mkEv builds a valid event whose payload message is msg.
func mkEv(topic, id, msg string) event.Event {
	return event.Event{
		EventID: id, Topic: topic, Source: "src",
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC),
		Payload:   fmt.Appendf(nil, `{"message":%q,"timestamp":"2026-01-02T03:04:05Z"}`, msg),
	}
}

type key struct{ Topic, ID string }

// row is what the tests compare of a stored event.
type row struct {
	Message, EntryID, Worker string
}

// state is the content of a store's tables, as the conformance checks see it.
type state struct {
	Rows     map[key]row
	Dropped  map[key]int // dropped copies per key
	Failed   int64       // rows in failed
	Ledger   map[string]string
	Counts   store.Counts
	Audit    map[string]int64 // audit_log entries per action
	Counters int64            // sum over counters of processed + dropped + failed
}

func readState(t *testing.T, st *store.Store) state {
	t.Helper()
	ctx := context.Background()
	s := state{Rows: map[key]row{}, Dropped: map[key]int{}, Ledger: map[string]string{}, Audit: map[string]int64{}}
	q := func(sql string, scan func(func(...any) error) error) {
		t.Helper()
		rows, err := st.Pool().Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows.Scan); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	q("SELECT topic, event_id, payload->>'message', entry_id, worker_id FROM events", func(scan func(...any) error) error {
		var k key
		var r row
		err := scan(&k.Topic, &k.ID, &r.Message, &r.EntryID, &r.Worker)
		s.Rows[k] = r
		return err
	})
	q("SELECT topic, event_id FROM dropped", func(scan func(...any) error) error {
		var k key
		err := scan(&k.Topic, &k.ID)
		s.Dropped[k]++
		return err
	})
	q("SELECT count(*) FROM failed", func(scan func(...any) error) error { return scan(&s.Failed) })
	q("SELECT token, outcome::text FROM applied_entries", func(scan func(...any) error) error {
		var tok, o string
		err := scan(&tok, &o)
		s.Ledger[tok] = o
		return err
	})
	q("SELECT action, count(*) FROM audit_log GROUP BY action", func(scan func(...any) error) error {
		var a string
		var n int64
		err := scan(&a, &n)
		s.Audit[a] = n
		return err
	})
	q("SELECT coalesce(sum(processed + dropped + failed), 0)::bigint FROM counters", func(scan func(...any) error) error {
		return scan(&s.Counters)
	})
	c, err := st.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Counts = c
	return s
}

// checkConsistent checks what must hold after any sequence of batches: the
// counters equal the rows, and the audit view agrees with both.
func checkConsistent(t *testing.T, s state) {
	t.Helper()
	dropped := 0
	for _, n := range s.Dropped {
		dropped += n
	}
	if s.Counts.UniqueProcessed != int64(len(s.Rows)) {
		t.Errorf("unique_processed %d, %d rows", s.Counts.UniqueProcessed, len(s.Rows))
	}
	if s.Counts.DuplicatedDropped != int64(dropped) {
		t.Errorf("duplicated_dropped %d, %d dropped rows", s.Counts.DuplicatedDropped, dropped)
	}
	if s.Counts.Failed != s.Failed {
		t.Errorf("failed counter %d, %d failed rows", s.Counts.Failed, s.Failed)
	}
	if s.Counts.Received() != s.Counts.UniqueProcessed+s.Counts.DuplicatedDropped {
		t.Errorf("received %d != unique + dropped", s.Counts.Received())
	}
	all := int64(len(s.Rows)) + int64(dropped) + s.Failed
	if s.Audit["RECEIVED"] != all || s.Audit["QUEUED"] != all || s.Audit["PROCESSED"] != int64(len(s.Rows)) ||
		s.Audit["DROPPED"] != int64(dropped) || s.Audit["FAILED"] != s.Failed {
		t.Errorf("audit %v for %d rows, %d dropped, %d failed", s.Audit, len(s.Rows), dropped, s.Failed)
	}
	if s.Counters != all {
		t.Errorf("counters sum %d, want %d", s.Counters, all)
	}
}
