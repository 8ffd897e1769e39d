package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

// Pending reports a consumer's pending entries with Redis's delivery
// counts without delivering them; Redeliver delivers them again (one more
// each); ClaimIDs takes idle entries over without delivering them.
func TestPendingRedeliverClaimIDs(t *testing.T) {
	t.Parallel()
	q, rdb := newQueue(t, 1000)
	ctx := context.Background()
	for i := range 3 {
		_, err := q.Append(ctx, msg(i+1))
		mustf(t, err == nil, "append: %v", err)
	}
	got, err := q.Read(ctx, "c1", 10, -1)
	mustf(t, err == nil && len(got) == 3, "read: %d %v", len(got), err)
	counts := func(consumer, after string) []int64 {
		t.Helper()
		ps, err := q.Pending(ctx, consumer, after, 10)
		mustf(t, err == nil, "pending: %v", err)
		var out []int64
		for _, p := range ps {
			out = append(out, p.Deliveries)
		}
		return out
	}
	c := counts("c1", "")
	mustf(t, len(c) == 3 && c[0] == 1 && c[2] == 1, "after one read: %v", c)
	mustf(t, len(counts("c1", "")) == 3, "Pending delivered something: %v", counts("c1", ""))
	mustf(t, len(counts("c1", got[0].ID)) == 2, "after %s: %v", got[0].ID, counts("c1", got[0].ID))

	es, err := q.Redeliver(ctx, "c1", []string{got[1].ID})
	mustf(t, err == nil && len(es) == 1 && es[0].Token == got[1].Token && string(es[0].Body) == string(got[1].Body), "redeliver: %+v %v", es, err)
	c = counts("c1", "")
	mustf(t, c[0] == 1 && c[1] == 2 && c[2] == 1, "after redelivering the second: %v", c)

	// Taken over without a delivery: the counts stay.
	const minIdle = 100 * time.Millisecond
	waitFor(t, 10*time.Second, "entries idle for "+minIdle.String(), func() bool {
		ps, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: q.Stream(), Group: queue.Group, Idle: minIdle, Start: "-", End: "+", Count: 10}).Result()
		return err == nil && len(ps) == 3
	})
	ids, _, err := q.ClaimIDs(ctx, "c2", minIdle, "0-0", 10)
	mustf(t, err == nil, "claim: %v", err)
	mustf(t, len(ids) == 3 && ids[0] == got[0].ID, "claimed %v", ids)
	mustf(t, len(counts("c1", "")) == 0, "c1 still owns %v", counts("c1", ""))
	c = counts("c2", "")
	mustf(t, len(c) == 3 && c[0] == 1 && c[1] == 2 && c[2] == 1, "c2's counts %v, want 1 2 1", c)

	// An entry deleted while pending is not redelivered (and leaves the
	// pending list).
	mustf(t, rdb.XDel(ctx, q.Stream(), got[0].ID).Err() == nil, "xdel")
	es, err = q.Redeliver(ctx, "c2", ids)
	mustf(t, err == nil && len(es) == 2 && es[0].ID == got[1].ID, "redeliver after XDEL: %+v %v", es, err)
}

// LedgerHorizon is the time of the oldest entry still in the stream or
// pending (every entry that can be delivered again is at or after it), and
// Redis's time when there is none.
func TestLedgerHorizon(t *testing.T) {
	t.Parallel()
	q, rdb := newQueue(t, 1000)
	ctx := context.Background()
	horizon := func() time.Time {
		t.Helper()
		h, err := q.LedgerHorizon(ctx)
		mustf(t, err == nil, "horizon: %v", err)
		return h
	}
	idTime := func(id string) time.Time {
		t.Helper()
		var ms int64
		for _, c := range id {
			if c == '-' {
				break
			}
			ms = ms*10 + int64(c-'0')
		}
		return time.UnixMilli(ms).UTC()
	}
	now, err := rdb.Time(ctx).Result()
	mustf(t, err == nil, "time: %v", err)
	h := horizon()
	mustf(t, !h.Before(now.Truncate(time.Millisecond)) && h.Sub(now) < 5*time.Second, "empty stream: horizon %v, redis time %v", h, now)

	// Entries at known times: XADD with explicit IDs in the past.
	for _, id := range []string{"1000-0", "2000-0", "3000-0"} {
		mustf(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: q.Stream(), ID: id, Values: []string{"t", "tok-" + id, "r", "0", "n", "0", "e", "[]"}}).Err() == nil, "xadd %s", id)
	}
	mustf(t, horizon().Equal(idTime("1000-0")), "undelivered: horizon %v", horizon())
	got, err := q.Read(ctx, "c1", 2, -1)
	mustf(t, err == nil && len(got) == 2, "read: %v", err)
	_, err = q.Ack(ctx, got[:1])
	mustf(t, err == nil, "ack: %v", err)
	mustf(t, horizon().Equal(idTime("2000-0")), "oldest pending 2000-0: horizon %v", horizon())
	// Pending but gone from the stream (XDEL without XACK): still pending,
	// still the horizon.
	mustf(t, rdb.XDel(ctx, q.Stream(), "2000-0").Err() == nil, "xdel")
	mustf(t, horizon().Equal(idTime("2000-0")), "pending, deleted: horizon %v", horizon())
	_, err = q.Ack(ctx, got[1:])
	mustf(t, err == nil, "ack: %v", err)
	mustf(t, horizon().Equal(idTime("3000-0")), "oldest undelivered 3000-0: horizon %v", horizon())
}
