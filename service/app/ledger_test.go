package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// pruneOutcome is what pruneAroundRedelivery saw: the stats once drained,
// the copies that entered the stream, and the rows stored.
type pruneOutcome struct {
	stats  stats
	copies int64
	rows   int64
}

// exact says what is wrong with o's stats ("" when they are exact).
func (o pruneOutcome) exact() string {
	s := o.stats
	switch {
	case s.Received != o.copies:
		return fmt.Sprintf("received %d, but %d copies entered the stream", s.Received, o.copies)
	case s.UniqueProcessed != o.rows:
		return fmt.Sprintf("unique_processed %d, but %d rows", s.UniqueProcessed, o.rows)
	case s.Received != s.UniqueProcessed+s.DuplicatedDropped:
		return fmt.Sprintf("stats %+v: received != unique_processed + duplicated_dropped", s)
	}
	return ""
}

// pruneAroundRedelivery runs the ledger pruner (LEDGER_RETENTION 1 ms,
// a pass every 20 ms) on a service with planted bug bug ("" for none)
// around redeliveries: entries applied and acknowledged (their ledger rows
// must go), entries a consumer committed and never acknowledged before it
// died (redelivered by a claim after CLAIM_IDLE, many passes later, and by
// the instance's own recovery at its start), and entries never delivered.
// It returns the stats once the queue is drained.
func pruneAroundRedelivery(t *testing.T, bug string) pruneOutcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tb := newTestbed(t, func(c *config.Config) {
		c.PlantedBug = bug
		c.WorkerCount = 2
		c.LedgerRetention = time.Millisecond
		c.LedgerPruneEvery = 20 * time.Millisecond
		c.ClaimIdle = 5 * time.Second
	})
	var o pruneOutcome

	// Applied and acknowledged: nothing can deliver them again, so their
	// ledger rows are pruned.
	for i := range 10 {
		mustf(t, tb.publish(ev("p", fmt.Sprint("a", i)), ev("p", "a0")) == 200, "publish %d", i)
		o.copies += 2
	}
	tb.drained()
	waitFor(t, 30*time.Second, "the ledger rows of acknowledged entries pruned", func() bool {
		return tb.count(`SELECT count(*) FROM applied_entries`) == 0
	})

	// The instance is gone; two consumers die after their commit and
	// before their acknowledgement: ghost-0 (a dead instance's worker,
	// whose entries only a claim delivers again) and test-0 (this
	// instance's own worker, which re-reads them when it starts).
	tb.stop()
	st, err := store.Open(ctx, tb.cfg.DatabaseURL, store.Options{})
	mustf(t, err == nil, "open store: %v", err)
	defer st.Close()
	appendEntries := func(prefix string, n int) {
		for i := range n {
			evs := []event.Event{storeEv("p", fmt.Sprint(prefix, i)), storeEv("p", "a1")}
			body := event.MarshalBatch(evs)
			_, err := tb.q.Append(ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: len(evs), Body: body})
			mustf(t, err == nil, "append: %v", err)
			o.copies += int64(len(evs))
		}
	}
	dieAfterCommit := func(consumer string, n int) {
		qs, err := tb.q.Read(ctx, consumer, n, -1)
		mustf(t, err == nil && len(qs) == n, "read as %s: %d entries, %v", consumer, len(qs), err)
		es := make([]store.Entry, len(qs))
		for i, e := range qs {
			evs, err := event.UnmarshalBatch(e.Body)
			mustf(t, err == nil, "decode: %v", err)
			es[i] = store.Entry{Token: e.Token, EntryID: e.ID, ReceivedAt: e.ReceivedAt, QueuedAt: e.QueuedAt(), Events: evs}
		}
		res, err := st.ApplyBatch(ctx, consumer, es)
		mustf(t, err == nil && len(res.Fresh) == n, "apply as %s: %+v, %v", consumer, res, err)
	}
	appendEntries("ghost", 6)
	dieAfterCommit("ghost-0", 6)
	appendEntries("own", 4)
	dieAfterCommit("test-0", 4)
	appendEntries("new", 3) // never delivered

	tb.start()
	// Passes of the pruner run while the ghost's entries wait for their
	// claim: their ledger rows are what makes the claim count them once.
	waitFor(t, 30*time.Second, "pruning passes while entries are pending", func() bool {
		v, _ := tb.metric("chronicle_ledger_prune_passes_total")
		return v >= 5
	})
	s := tb.stats()
	mustf(t, s.Pending >= 6, "the ghost's entries were claimed before the pruner ran (pending %d): the test proves nothing", s.Pending)
	o.stats = tb.drained()
	o.rows = tb.count(`SELECT count(*) FROM events`)
	waitFor(t, 30*time.Second, "the ledger rows of the redelivered entries pruned once acknowledged", func() bool {
		return tb.count(`SELECT count(*) FROM applied_entries`) == 0
	})
	return o
}

// storeEv is ev as the service's event type (for entries the test
// appends to the stream itself).
func storeEv(topic, id string) event.Event {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	return event.Event{
		EventID: id, Topic: topic, Source: "test", Timestamp: ts,
		Payload: fmt.Appendf(nil, `{"message":"m-%s","timestamp":"2026-01-02T03:04:05.123456Z"}`, id),
	}
}

// Issue 15: the ledger pruner deletes the rows of acknowledged entries and
// never a row an entry still pending needs: entries redelivered around
// prunes (claimed from a dead consumer, re-read by a restarted one) count
// once, and the stats stay exact. Once everything is acknowledged, their
// rows go too.
func TestLedgerPruneAroundRedelivery(t *testing.T) {
	t.Parallel()
	o := pruneAroundRedelivery(t, "")
	mustf(t, o.exact() == "", "%s", o.exact())
	mustf(t, o.stats.DuplicatedDropped > 0, "no duplicates exercised: %+v", o.stats)
	t.Logf("copies %d, stats %+v", o.copies, o.stats)
}
