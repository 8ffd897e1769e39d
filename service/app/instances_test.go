package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/app"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
	"github.com/chronicleweaver/chronicleweaver/service/worker"
)

// Two instances share a Redis prefix and a database. A consumer of instance
// A reads entries and dies: some it never applied, some it committed without
// acknowledging. Instance B claims them after CLAIM_IDLE and applies them
// once; then A comes back and both serve. Nothing is lost or counted twice.
func TestInstanceClaimsDeadInstancesEntries(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dbURL, prefix := env.NewDatabase(t), env.NewPrefix(t)
	shared := func(id string) func(*config.Config) {
		return func(c *config.Config) {
			c.DatabaseURL, c.RedisURL, c.StreamPrefix, c.InstanceID = dbURL, env.Redis.URL(), prefix, id
			c.WorkerCount, c.BatchSize, c.ClaimIdle = 2, 4, time.Second
		}
	}

	// Instance A's consumer 0, played by the test: it reads 8 entries of 10
	// events (keys overlap: 50 distinct), commits the first 4 without
	// acknowledging them, and dies.
	st, err := store.Open(ctx, dbURL, store.Options{})
	mustf(t, err == nil, "open store: %v", err)
	defer st.Close()
	_, err = st.Migrate(ctx)
	mustf(t, err == nil, "migrate: %v", err)
	pre := prepareTestbed(t, func() config.Config { c := config.Defaults(); shared("A")(&c); return c }())
	mustf(t, pre.q.Setup(ctx) == nil, "setup queue")
	keys := map[evKey]bool{}
	copies := int64(0)
	for i := range 8 {
		var evs []event.Event
		for j := range 10 {
			id := fmt.Sprint((i*10 + j) % 50)
			evs = append(evs, mkEvent("claim", id))
			keys[evKey{"claim", id}] = true
		}
		copies += int64(len(evs))
		_, err := pre.q.Append(ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: len(evs), Body: event.AppendBatch(nil, evs)})
		mustf(t, err == nil, "append: %v", err)
	}
	deadConsumer := worker.ConsumerName("A", 0)
	got, err := pre.q.Read(ctx, deadConsumer, 100, -1)
	mustf(t, err == nil && len(got) == 8, "read as %s: %d entries (%v)", deadConsumer, len(got), err)
	var applied []store.Entry
	for _, e := range got[:4] {
		evs, err := event.UnmarshalBatch(e.Body)
		mustf(t, err == nil, "decode: %v", err)
		applied = append(applied, store.Entry{Token: e.Token, EntryID: e.ID, ReceivedAt: e.ReceivedAt, QueuedAt: e.QueuedAt(), Events: evs})
	}
	res, err := st.ApplyBatch(ctx, deadConsumer, applied)
	mustf(t, err == nil && len(res.Fresh) == 4, "apply as %s: %+v (%v)", deadConsumer, res, err)

	// Instance B starts, claims the 8 entries idle in A-0, and applies the
	// 4 that were not committed; meanwhile it takes publishes of its own.
	b := newTestbed(t, shared("B"))
	mustf(t, b.publish(ev("claim", "0"), ev("claim", "b-only")) == 200, "publish to B")
	keys[evKey{"claim", "b-only"}] = true
	copies += 2
	waitFor(t, 30*time.Second, "B claiming A-0's entries", func() bool {
		d, err := b.q.Depth(ctx)
		return err == nil && d.Pending == 0 && d.Backlog == 0
	})
	s := b.drained()
	if s.Received != copies || s.UniqueProcessed != int64(len(keys)) || s.DuplicatedDropped != copies-int64(len(keys)) {
		t.Fatalf("stats %+v, want received %d, unique %d", s, copies, len(keys))
	}
	mustf(t, b.count("SELECT count(*) FROM events") == int64(len(keys)), "rows != unique keys")
	mustf(t, b.count("SELECT count(*) FROM applied_entries") == 9, "ledger rows != 9 entries")
	claimed, _ := b.metric("chronicle_claimed_entries_total")
	redelivered, _ := b.metric("chronicle_redeliveries_total")
	mustf(t, claimed >= 8, "B claimed %v entries, want 8", claimed)
	mustf(t, redelivered >= 4, "B recognised %v redeliveries, want 4 (the committed entries)", redelivered)
	// A-0 owns nothing any more.
	own, err := b.q.ReadPending(ctx, deadConsumer, "0", 100)
	mustf(t, err == nil && len(own) == 0, "A-0 still owns %d entries (%v)", len(own), err)

	// A comes back; both instances serve the same queue and database.
	a := newTestbed(t, shared("A"))
	var wg sync.WaitGroup
	for i, tb := range []*testbed{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 10 {
				// Keys overlap across instances: each key is sent by two of them.
				code, _ := postJSON(tb.url, ev("both", fmt.Sprintf("%d-%d", i%2, r)), ev("both", fmt.Sprintf("shared-%d", r)))
				if code != 200 {
					t.Errorf("publish to instance %d: %d", i, code)
				}
			}
		}()
	}
	wg.Wait()
	sa, sb := a.drained(), b.drained()
	mustf(t, sa.Received == sb.Received && sa.UniqueProcessed == sb.UniqueProcessed, "instances disagree: %+v vs %+v", sa, sb)
	// 80 more copies: 20 + 20 per-instance keys (each sent twice) and 10 shared keys (sent 4 times).
	want := stats{Received: copies + 80, UniqueProcessed: int64(len(keys)) + 30}
	if sa.Received != want.Received || sa.UniqueProcessed != want.UniqueProcessed || sa.Received != sa.UniqueProcessed+sa.DuplicatedDropped {
		t.Fatalf("stats %+v, want received %d, unique %d", sa, want.Received, want.UniqueProcessed)
	}
	mustf(t, a.count("SELECT count(*) FROM events") == want.UniqueProcessed, "rows != unique_processed")
}

// postJSON publishes events without a testing.T (for goroutines).
func postJSON(url string, events ...map[string]any) (int, error) {
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		return 0, err
	}
	resp, err := http.Post(url+"/publish", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Instances starting at once on a fresh database all migrate it without an
// error, and each migration is applied once.
func TestInstancesMigrateAtOnce(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dbURL, prefix := env.NewDatabase(t), env.NewPrefix(t)
			mains := make([]*app.Main, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range mains {
				cfg := config.Defaults()
				cfg.DatabaseURL, cfg.RedisURL, cfg.StreamPrefix = dbURL, env.Redis.URL(), prefix
				cfg.InstanceID, cfg.WorkerCount = fmt.Sprintf("m%d", i), 1
				mains[i] = &app.Main{Config: cfg, Log: app.NewLogger(testWriter{t}, "warn"), Listen: "127.0.0.1:0"}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = mains[i].Run(ctx)
				}()
			}
			close(start)
			wg.Wait()
			for i, m := range mains {
				if errs[i] != nil {
					t.Errorf("instance %d: %v", i, errs[i])
					continue
				}
				t.Cleanup(func() {
					cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer ccancel()
					if err := m.Close(cctx); err != nil {
						t.Errorf("close instance %d: %v", i, err)
					}
				})
			}
			if t.Failed() {
				t.FailNow()
			}
			tb := prepareTestbed(t, mains[0].Config)
			dup := tb.count("SELECT count(*) FROM (SELECT version FROM schema_migrations GROUP BY version HAVING count(*) > 1) d")
			mustf(t, dup == 0, "%d versions recorded more than once", dup)
			maxV := tb.count("SELECT coalesce(max(version), 0) FROM schema_migrations")
			mustf(t, maxV == int64(store.LatestVersion()), "schema at version %d, want %d", maxV, store.LatestVersion())
			rows := tb.count("SELECT count(*) FROM schema_migrations")
			mustf(t, rows == int64(store.LatestVersion()), "%d migrations recorded, want %d", rows, store.LatestVersion())
			for i, m := range mains {
				tb.url = m.URL()
				var r map[string]string
				mustf(t, tb.getJSON("/ready", &r) == 200 && r["status"] == "ready", "instance %d not ready: %v", i, r)
			}
		})
	}
}
