package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

// Open builds a client of its own from REDIS_URL: the queue works through
// it, and Close closes it.
func TestOpen(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := queue.Open(ctx, env.Redis.URL(), queue.Options{Prefix: env.NewPrefix(t), MaxLen: 10, Group: true, PoolSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Append(ctx, msg(2)); err != nil {
		t.Fatal(err)
	}
	got, err := q.Read(ctx, "c", 10, -1)
	if err != nil || len(got) != 1 || got[0].Count != 2 {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	q.Close()
	if err := q.Ping(ctx); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Ping after Close = %v, want a closed client", err)
	}
	q.Close() // idempotent
}

// A REDIS_URL that does not parse is refused with a line naming it.
func TestOpenBadURL(t *testing.T) {
	t.Parallel()
	_, err := queue.Open(context.Background(), "http://r:6379", queue.Options{})
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Fatalf("Open(http URL) = %v", err)
	}
}
