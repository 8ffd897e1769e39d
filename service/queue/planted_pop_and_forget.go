//go:build plantedbugs

package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// PopAndForget is the planted bug pop-and-forget, a negative control (see
// service/planted): a Queue whose Read takes entries off the stream as it
// reads them, as the original design's BRPOP did (XREADGROUP NOACK, then
// XDEL): no pending list remembers them, so a crash loses what was read and
// not yet committed. Every other method is the Queue's own.
type PopAndForget struct{ *Queue }

// forgetScript deletes read entries and shrinks the backlog: what a
// pop-style queue does on read.
// KEYS: stream, backlog. ARGV: id/count pairs.
var forgetScript = redis.NewScript(`
for i = 1, #ARGV, 2 do
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    redis.call('DECRBY', KEYS[2], ARGV[i + 1])
  end
end
return 0
`)

// Read reads like Queue.Read and forgets the entries at once.
func (q PopAndForget) Read(ctx context.Context, consumer string, count int, block time.Duration) ([]Entry, error) {
	streams, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: Group, Consumer: consumer, Streams: []string{q.stream, ">"},
		Count: int64(count), Block: block, NoAck: true,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: read %s as %s: %w", q.stream, consumer, err)
	}
	var out []Entry
	var args []any
	for _, s := range streams {
		for _, m := range s.Messages {
			e := parse(m)
			out = append(out, e)
			args = append(args, e.ID, e.Count)
		}
	}
	if len(args) > 0 {
		if err := forgetScript.Run(ctx, q.rdb, []string{q.stream, q.back}, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return out, fmt.Errorf("queue: forget read entries: %w", err)
		}
	}
	return out, nil
}
