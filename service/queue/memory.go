package queue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// MemoryUsed is Redis's used_memory (INFO memory): every byte Redis holds,
// the stream and its pending entries included. It is O(1) in Redis, so the
// service polls it to refuse publishes past QUEUE_MAX_BYTES (the stream
// itself has no cheap exact size: MEMORY USAGE samples, XINFO walks).
func (q *Queue) MemoryUsed(ctx context.Context) (int64, error) {
	info, err := q.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("queue: INFO memory: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("queue: INFO memory: used_memory %q: %w", v, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("queue: INFO memory: no used_memory")
}
