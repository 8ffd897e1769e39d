package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// LedgerHorizon returns the time (Redis's clock, from the stream entry ID)
// of the oldest entry that can still be delivered: the oldest of the first
// entry still in the stream (undelivered or pending: acknowledged entries
// are deleted) and the oldest pending entry of the group; Redis's current
// time when there is none. Every entry that could ever be delivered again,
// claimed from a dead consumer or re-read by a restarted one, has an ID at
// or after it, and so has every entry appended later (IDs only grow). It is
// read in one MULTI, so the stream and the pending list are seen at one
// moment, and is the same for every instance sharing the stream.
func (q *Queue) LedgerHorizon(ctx context.Context) (time.Time, error) {
	pipe := q.rdb.TxPipeline()
	first := pipe.XRangeN(ctx, q.stream, "-", "+", 1)
	pend := pipe.XPending(ctx, q.stream, Group)
	now := pipe.Time(ctx)
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) && !strings.HasPrefix(err.Error(), "NOGROUP") {
		return time.Time{}, fmt.Errorf("queue: oldest entry of %s: %w", q.stream, err)
	}
	t, err := now.Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("queue: redis time: %w", err)
	}
	h := t.Truncate(time.Millisecond)
	if msgs, err := first.Result(); err == nil && len(msgs) > 0 {
		if ms, ok := idMillis(msgs[0].ID); ok && ms.Before(h) {
			h = ms
		}
	}
	if p, err := pend.Result(); err == nil && p.Count > 0 {
		if ms, ok := idMillis(p.Lower); ok && ms.Before(h) {
			h = ms
		}
	}
	return h, nil
}

// idMillis is the time part of a stream entry ID.
func idMillis(id string) (time.Time, bool) {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(n).UTC(), true
}
