package queue_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

// An append with an idempotency key stores its record in the same script
// call: a second append with the key and the same fingerprint appends
// nothing and answers *ReplayError with the first count; another
// fingerprint, ErrIdemConflict. Both paths (one call per append, and
// grouped appends, where racing appends of one key share a call) append
// exactly one entry, and the backlog grows once. The entry carries its
// queue time in microseconds, never before its receive time.
func TestAppendIdempotencyKey(t *testing.T) {
	t.Parallel()
	for _, grouped := range []bool{false, true} {
		t.Run(map[bool]string{false: "single", true: "grouped"}[grouped], func(t *testing.T) {
			t.Parallel()
			rdb := redis.NewClient(&redis.Options{Addr: env.Redis.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			q := queue.New(rdb, queue.Options{Prefix: env.NewPrefix(t), MaxLen: 1000, Group: grouped, IdempotencyTTL: time.Minute})
			t.Cleanup(q.Close)
			ctx := context.Background()
			mustf(t, q.Setup(ctx) == nil, "setup")

			m := msg(3)
			m.Idem = queue.Idem{Key: q.IdemKey("", "k1"), Sum: queue.Fingerprint(m.Body)}
			// 8 racing appends of one request: one appends, the others replay.
			var wg sync.WaitGroup
			var mu sync.Mutex
			ids, replays := 0, 0
			for range 8 {
				wg.Go(func() {
					id, err := q.Append(ctx, m)
					var rep *queue.ReplayError
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && id != "":
						ids++
					case errors.As(err, &rep) && rep.Count == 3:
						replays++
					default:
						t.Errorf("append: %q, %v", id, err)
					}
				})
			}
			wg.Wait()
			mustf(t, ids == 1 && replays == 7, "%d appended, %d replayed; want 1, 7", ids, replays)

			other := msg(2)
			other.Idem = queue.Idem{Key: m.Idem.Key, Sum: queue.Fingerprint(other.Body)}
			_, err := q.Append(ctx, other)
			mustf(t, errors.Is(err, queue.ErrIdemConflict), "same key, other body: %v", err)
			// The same key in another scope is another request.
			scoped := m
			scoped.Idem.Key = q.IdemKey("token:x", "k1")
			_, err = q.Append(ctx, scoped)
			mustf(t, err == nil, "other scope: %v", err)

			d := depth(t, q)
			mustf(t, d.Entries == 2 && d.Backlog == 6, "entries %d backlog %d, want 2, 6", d.Entries, d.Backlog)
			ttl, err := rdb.PTTL(ctx, m.Idem.Key).Result()
			mustf(t, err == nil && ttl > 50*time.Second && ttl <= time.Minute, "record PTTL %s, %v", ttl, err)

			es, err := q.Read(ctx, "c", 10, time.Second)
			mustf(t, err == nil && len(es) == 2, "read %d, %v", len(es), err)
			for _, e := range es {
				// Redis's clock, on this machine: within seconds of ours.
				mustf(t, e.Queued.Sub(e.ReceivedAt).Abs() < 5*time.Second, "entry %s: queue time %v, received %v", e.ID, e.Queued, e.ReceivedAt)
				mustf(t, !e.QueuedAt().Before(e.ReceivedAt.Truncate(time.Microsecond)), "entry %s queued %v before received %v", e.ID, e.QueuedAt(), e.ReceivedAt)
			}
		})
	}
}
