package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/metrics"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
	"github.com/chronicleweaver/chronicleweaver/service/worker"
)

// crashID is the event whose entry "kills the process" in crashingStore.
const crashID = "crash-me"

// crashingStore is the production store, except that a batch holding the
// event crashID never returns: the worker hangs as a process would that a
// bug kills while it applies the entry, and the test (told on crashed)
// then kills the instance. Nothing is committed or acknowledged.
type crashingStore struct {
	*store.Store
	crashed chan<- string // the worker that hit the entry
}

func (s crashingStore) ApplyBatch(ctx context.Context, w string, es []store.Entry) (store.Applied, error) {
	for _, e := range es {
		for _, ev := range e.Events {
			if ev.EventID == crashID {
				select {
				case s.crashed <- w:
				default:
				}
				<-ctx.Done()
				return store.Applied{}, ctx.Err()
			}
		}
	}
	return s.Store.ApplyBatch(ctx, w, es)
}

// testWriter sends a logger's lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// Issue 15: an entry whose processing kills the process every time is
// redelivered at each restart and never refused for its data, so
// MAX_ATTEMPTS never ends it. After MAX_DELIVERIES deliveries without an
// acknowledgement it is dead-lettered, with its reason in the dead-letter
// stream and the FAILED audit; the entries read in its batch are not
// (redelivered entries are applied one by one), and every other entry
// published meanwhile is applied exactly once.
func TestCrashLoopEntryDeadLettered(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, env.NewDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(ctx, env.Redis.URL(), queue.Options{Prefix: env.NewPrefix(t), MaxLen: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	const maxDeliveries = 3
	cfg := worker.Config{
		Instance: "crash", Count: 2, BatchSize: 10, ClaimIdle: 500 * time.Millisecond,
		MaxAttempts: 5, MaxDeliveries: maxDeliveries, Block: 100 * time.Millisecond,
	}

	// Publishers append entries of two events until stopped; every third
	// entry repeats an earlier event (a duplicate to drop).
	var mu sync.Mutex
	copies, stop, published := int64(0), make(chan struct{}), make(chan struct{})
	appendEntry := func(evs ...event.Event) {
		t.Helper()
		body := event.MarshalBatch(evs)
		_, err := q.Append(ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: len(evs), Body: body})
		if err != nil {
			t.Errorf("append: %v", err)
		}
	}
	mkEv := func(id string) event.Event {
		return event.Event{EventID: id, Topic: "loop", Source: "test", Timestamp: time.Now().UTC(),
			Payload: []byte(`{"message":"m","timestamp":"2026-01-02T03:04:05Z"}`)}
	}
	for i := range 5 {
		appendEntry(mkEv(fmt.Sprint("n-", i)), mkEv(fmt.Sprint("m-", i)))
		copies += 2
	}
	appendEntry(mkEv(crashID), mkEv("crash-mate"))
	go func() {
		defer close(published)
		for i := 5; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			evs := []event.Event{mkEv(fmt.Sprint("n-", i)), mkEv(fmt.Sprint("m-", i))}
			if i%3 == 0 {
				evs[1] = mkEv(fmt.Sprint("n-", i-1))
			}
			appendEntry(evs...)
			mu.Lock()
			copies += 2
			mu.Unlock()
		}
	}()

	// Start the instance; each time a worker hits the entry, kill it
	// (its drain cut at once: nothing in flight is acknowledged) and
	// start it again, until the entry is dead-lettered.
	crashed := make(chan string, 1)
	run := func() *worker.Pool {
		p := worker.New(cfg, q, crashingStore{Store: st, crashed: crashed}, metrics.New(), log)
		p.Start()
		return p
	}
	kill := func(p *worker.Pool) {
		dead, cancel := context.WithCancel(ctx)
		cancel()
		_ = p.Stop(dead) // cut short: that is the point
	}
	depth := func() queue.Depth {
		d, err := q.Depth(ctx)
		if err != nil {
			t.Fatalf("depth: %v", err)
		}
		return d
	}
	deadline := time.Now().Add(90 * time.Second)
	pool, crashes := run(), 0
	for depth().DeadLettered == 0 {
		if time.Now().After(deadline) {
			kill(pool)
			t.Fatalf("entry not dead-lettered after %d crashes", crashes)
		}
		select {
		case <-crashed:
			crashes++
			kill(pool)
			pool = run()
		case <-time.After(20 * time.Millisecond): // poll the dead-letter stream
		}
	}
	close(stop)
	<-published
	drainDeadline := time.Now().Add(30 * time.Second)
	for d := depth(); d.Backlog != 0 || d.Pending != 0; d = depth() {
		if time.Now().After(drainDeadline) {
			kill(pool)
			t.Fatalf("queue not drained: %+v", d)
		}
		select {
		case <-crashed:
			kill(pool)
			t.Fatalf("the entry crashed a worker after it was dead-lettered")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := pool.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}

	if crashes < maxDeliveries-1 {
		t.Errorf("%d crashes before the dead letter, want at least %d", crashes, maxDeliveries-1)
	}
	ropts, err := redis.ParseURL(env.Redis.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	dead, err := rdb.XRange(ctx, q.DeadStream(), "-", "+").Result()
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead-letter stream: %d entries (%v), want the crashing one alone", len(dead), err)
	}
	reason, _ := dead[0].Values["reason"].(string)
	want := fmt.Sprintf("delivered %d times without an acknowledgement (crash loop?)", maxDeliveries)
	if reason != want {
		t.Errorf("dead letter reason %q, want %q", reason, want)
	}
	var failed int64
	var failedReason string
	if err := st.Pool().QueryRow(ctx, `SELECT count(*), min(reason) FROM failed WHERE event_id IN ($1, 'crash-mate')`, crashID).Scan(&failed, &failedReason); err != nil {
		t.Fatal(err)
	}
	if failed != 2 || failedReason != want {
		t.Errorf("FAILED audit: %d rows, reason %q; want 2 rows (the entry's two events), reason %q", failed, failedReason, want)
	}
	c, err := st.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows, crashRows int64
	if err := st.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE event_id IN ($1, 'crash-mate')) FROM events`, crashID).Scan(&rows, &crashRows); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if c.Received() != copies || c.UniqueProcessed != rows || crashRows != 0 || c.Failed != 2 {
		t.Errorf("counts %+v (received %d), %d rows (%d of the crashing entry); want received %d = the copies of the other entries, failed 2",
			c, c.Received(), rows, crashRows, copies)
	}
	if !strings.Contains(reason, "crash loop") {
		t.Errorf("reason %q does not say crash loop", reason)
	}
	t.Logf("%d crashes; %d copies applied exactly once meanwhile; dead letter: %s", crashes, copies, reason)
}
