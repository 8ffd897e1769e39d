package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// TestIdemRecordMemory measures what a key record costs Redis (the README
// quotes it): used_memory grown by 20,000 records shaped as Append writes
// them (hashed key under the prefix, fingerprint and count, an expiry),
// per record. Not parallel: no other test of the package writes meanwhile.
func TestIdemRecordMemory(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: env.Redis.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	q := queue.New(rdb, queue.Options{Prefix: "chronicle:" + env.NewPrefix(t)})
	ctx := context.Background()
	used := func() int64 {
		s, err := rdb.Info(ctx, "memory").Result()
		mustf(t, err == nil, "INFO memory: %v", err)
		for _, l := range strings.Split(s, "\r\n") {
			if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				mustf(t, err == nil, "used_memory %q", v)
				return n
			}
		}
		t.Fatal("no used_memory in INFO memory")
		return 0
	}
	const n = 20_000
	keys := make([]string, n)
	before := used()
	pipe := rdb.Pipeline()
	for i := range n {
		keys[i] = q.IdemKey("", fmt.Sprint("request-", i))
		pipe.Set(ctx, keys[i], queue.Fingerprint([]byte(fmt.Sprint(i)))+" 10", time.Hour)
	}
	_, err := pipe.Exec(ctx)
	mustf(t, err == nil, "SET: %v", err)
	per := float64(used()-before) / n
	one, err := rdb.MemoryUsage(ctx, keys[0]).Result()
	mustf(t, err == nil, "MEMORY USAGE: %v", err)
	t.Logf("key record: %.0f bytes of used_memory each (%d records), MEMORY USAGE %d bytes", per, n, one)
	mustf(t, per > 0 && per < 300, "%.0f bytes per key record, want under 300", per)
	mustf(t, rdb.Del(ctx, keys...).Err() == nil, "DEL")
}
