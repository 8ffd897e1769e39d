package queue_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

// Grouped appends keep Append's meaning: each caller gets its own entry ID
// or ErrBackpressure, the backlog limit holds exactly across a group, and
// the entries read back intact.
func TestGroupedAppends(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: env.Redis.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	q := queue.New(rdb, queue.Options{Prefix: env.NewPrefix(t), MaxLen: 50, Group: true})
	t.Cleanup(q.Close)
	ctx := context.Background()
	mustf(t, q.Setup(ctx) == nil, "setup")

	const callers = 200
	ids := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = q.Append(ctx, msg(1))
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	ok, refused := 0, 0
	for i := range callers {
		switch {
		case errs[i] == nil:
			ok++
			mustf(t, ids[i] != "" && !seen[ids[i]], "caller %d: ID %q empty or repeated", i, ids[i])
			seen[ids[i]] = true
		case errors.Is(errs[i], queue.ErrBackpressure):
			refused++
		default:
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	mustf(t, ok == 50 && refused == callers-50, "%d appended, %d refused; want 50 and %d", ok, refused, callers-50)
	d := depth(t, q)
	mustf(t, d.Backlog == 50 && d.Entries == 50, "depth %+v, want backlog and entries 50", d)

	got, err := q.Read(ctx, "c", 100, -1)
	mustf(t, err == nil && len(got) == 50, "read %d entries (%v)", len(got), err)
	for _, e := range got {
		mustf(t, e.Err == nil && seen[e.ID] && e.Count == 1 && len(e.Body) > 0, "entry %+v", e)
	}

	q.Close()
	_, err = q.Append(ctx, msg(1))
	mustf(t, err != nil, "append after Close succeeded")
}
