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

// crashBed is one instance's queue and store, with publishers appending
// entries of two events until stopPublishing (every third entry repeats an
// earlier event: a duplicate to drop), and, among the first entries, one
// whose events are crashID and "crash-mate".
type crashBed struct {
	t       *testing.T
	ctx     context.Context
	st      *store.Store
	q       *queue.Queue
	cfg     worker.Config
	log     *slog.Logger
	crashed chan string

	mu     sync.Mutex
	copies int64 // event copies appended, the crashing entry's left out

	stop, published chan struct{}
}

const maxDeliveries = 3

func newCrashBed(t *testing.T, ctx context.Context) *crashBed {
	t.Helper()
	st, err := store.Open(ctx, env.NewDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(ctx, env.Redis.URL(), queue.Options{Prefix: env.NewPrefix(t), MaxLen: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	if err := q.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	b := &crashBed{
		t: t, ctx: ctx, st: st, q: q,
		cfg: worker.Config{
			Instance: "crash", Count: 2, BatchSize: 10, ClaimIdle: 500 * time.Millisecond,
			MaxAttempts: 5, MaxDeliveries: maxDeliveries, Block: 100 * time.Millisecond,
		},
		log:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		crashed: make(chan string, 1),
		stop:    make(chan struct{}), published: make(chan struct{}),
	}
	for i := range 5 {
		b.appendEntry(mkLoopEv(fmt.Sprint("n-", i)), mkLoopEv(fmt.Sprint("m-", i)))
	}
	b.appendEntry(mkLoopEv(crashID), mkLoopEv("crash-mate"))
	go func() {
		defer close(b.published)
		for i := 5; ; i++ {
			select {
			case <-b.stop:
				return
			case <-time.After(10 * time.Millisecond): // the publishers' pace
			}
			evs := []event.Event{mkLoopEv(fmt.Sprint("n-", i)), mkLoopEv(fmt.Sprint("m-", i))}
			if i%3 == 0 {
				evs[1] = mkLoopEv(fmt.Sprint("n-", i-1))
			}
			b.appendEntry(evs...)
		}
	}()
	t.Cleanup(b.stopPublishing)
	return b
}

func mkLoopEv(id string) event.Event {
	return event.Event{EventID: id, Topic: "loop", Source: "test", Timestamp: time.Now().UTC(),
		Payload: []byte(`{"message":"m","timestamp":"2026-01-02T03:04:05Z"}`)}
}

func (b *crashBed) appendEntry(evs ...event.Event) {
	body := event.MarshalBatch(evs)
	_, err := b.q.Append(b.ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: len(evs), Body: body})
	if err != nil {
		b.t.Errorf("append: %v", err)
		return
	}
	if evs[0].EventID != crashID {
		b.mu.Lock()
		b.copies += int64(len(evs))
		b.mu.Unlock()
	}
}

func (b *crashBed) stopPublishing() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.published
}

// run starts the instance's workers on wq.
func (b *crashBed) run(wq worker.Queue) *worker.Pool {
	p := worker.New(b.cfg, wq, crashingStore{Store: b.st, crashed: b.crashed}, metrics.New(), b.log)
	p.Start()
	return p
}

// kill stops p as a kill would: its drain cut at once, nothing in flight
// acknowledged.
func (b *crashBed) kill(p *worker.Pool) {
	dead, cancel := context.WithCancel(b.ctx)
	cancel()
	_ = p.Stop(dead) // cut short: that is the point
}

func (b *crashBed) depth() queue.Depth {
	d, err := b.q.Depth(b.ctx)
	if err != nil {
		b.t.Fatalf("depth: %v", err)
	}
	return d
}

// loop starts the instance on wq and, each time a worker hits the
// crashing entry, kills it and starts it again, until the entry is
// dead-lettered or it crashed limit times (or 90 s passed). It returns the
// instance running then and the crashes.
func (b *crashBed) loop(wq worker.Queue, limit int) (*worker.Pool, int) {
	deadline := time.Now().Add(90 * time.Second)
	pool, crashes := b.run(wq), 0
	for b.depth().DeadLettered == 0 && crashes < limit {
		if time.Now().After(deadline) {
			b.kill(pool)
			b.t.Fatalf("neither dead-lettered nor %d crashes after 90 s (%d crashes)", limit, crashes)
		}
		select {
		case <-b.crashed:
			crashes++
			b.kill(pool)
			pool = b.run(wq)
		case <-time.After(20 * time.Millisecond): // poll the dead-letter stream
		}
	}
	return pool, crashes
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
	b := newCrashBed(t, ctx)
	pool, crashes := b.loop(b.q, 1000)
	b.stopPublishing()
	drainDeadline := time.Now().Add(30 * time.Second)
	for d := b.depth(); d.Backlog != 0 || d.Pending != 0; d = b.depth() {
		if time.Now().After(drainDeadline) {
			b.kill(pool)
			t.Fatalf("queue not drained: %+v", d)
		}
		select {
		case <-b.crashed:
			b.kill(pool)
			t.Fatalf("the entry crashed a worker after it was dead-lettered")
		case <-time.After(20 * time.Millisecond): // poll the queue's depth
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
	dead, err := rdb.XRange(ctx, b.q.DeadStream(), "-", "+").Result()
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
	if err := b.st.Pool().QueryRow(ctx, `SELECT count(*), min(reason) FROM failed WHERE event_id IN ($1, 'crash-mate')`, crashID).Scan(&failed, &failedReason); err != nil {
		t.Fatal(err)
	}
	if failed != 2 || failedReason != want {
		t.Errorf("FAILED audit: %d rows, reason %q; want 2 rows (the entry's two events), reason %q", failed, failedReason, want)
	}
	c, err := b.st.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows, crashRows int64
	if err := b.st.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE event_id IN ($1, 'crash-mate')) FROM events`, crashID).Scan(&rows, &crashRows); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.Received() != b.copies || c.UniqueProcessed != rows || crashRows != 0 || c.Failed != 2 {
		t.Errorf("counts %+v (received %d), %d rows (%d of the crashing entry); want received %d = the copies of the other entries, failed 2",
			c, c.Received(), rows, crashRows, b.copies)
	}
	if !strings.Contains(reason, "crash loop") {
		t.Errorf("reason %q does not say crash loop", reason)
	}
	t.Logf("%d crashes; %d copies applied exactly once meanwhile; dead letter: %s", crashes, b.copies, reason)
}
