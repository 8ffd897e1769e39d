package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pending is one entry of a consumer's pending list.
type Pending struct {
	ID string
	// Deliveries is how many times the group delivered the entry (read,
	// re-read or claimed) without it being acknowledged: Redis's delivery
	// counter. An entry whose processing kills the process comes back with
	// one more each time.
	Deliveries int64
}

// Pending lists up to count of consumer's pending entries with IDs after
// after ("" from the first), with their delivery counts. It delivers
// nothing: the counts do not change.
func (q *Queue) Pending(ctx context.Context, consumer, after string, count int) ([]Pending, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	ps, err := q.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: q.stream, Group: Group, Start: start, End: "+", Count: int64(count), Consumer: consumer,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: pending entries of %s in %s: %w", consumer, q.stream, err)
	}
	out := make([]Pending, len(ps))
	for i, p := range ps {
		out[i] = Pending{ID: p.ID, Deliveries: p.RetryCount}
	}
	return out, nil
}

// Redeliver delivers the pending entries ids again to consumer (XCLAIM,
// whatever their idle time), which adds one to their delivery counts, and
// returns them. An entry no longer in the stream is
// dropped from the pending list by Redis and not returned.
func (q *Queue) Redeliver(ctx context.Context, consumer string, ids []string) ([]Entry, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	msgs, err := q.rdb.XClaim(ctx, &redis.XClaimArgs{
		Stream: q.stream, Group: Group, Consumer: consumer, MinIdle: 0, Messages: ids,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: redeliver %d entries of %s: %w", len(ids), q.stream, err)
	}
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, parse(m))
	}
	return out, nil
}

// ClaimIDs makes consumer the owner of up to count entries pending in any
// consumer for longer than minIdle (a dead or stuck worker's), scanning from
// start ("0-0" first), without delivering them (their delivery counts do
// not change): the new owner then treats them as its own pending entries
// (Pending, Redeliver). It returns the IDs and where to resume.
func (q *Queue) ClaimIDs(ctx context.Context, consumer string, minIdle time.Duration, start string, count int) ([]string, string, error) {
	ids, next, err := q.rdb.XAutoClaimJustID(ctx, &redis.XAutoClaimArgs{
		Stream: q.stream, Group: Group, Consumer: consumer, MinIdle: minIdle, Start: start, Count: int64(count),
	}).Result()
	if err != nil {
		return nil, start, fmt.Errorf("queue: claim idle entries of %s: %w", q.stream, err)
	}
	return ids, next, nil
}
