package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/service/devenv"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

var env *devenv.Env

// TestMain runs the package's tests on one PostgreSQL and one Redis, then
// fails if a goroutine outlived them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(withEnv{m}) }

// withEnv is m run by devenv.RunTests, for goleak.
type withEnv struct{ m *testing.M }

func (w withEnv) Run() int { return devenv.RunTests(w.m, &env) }

// newQueue returns a set-up queue under a fresh key prefix, and its client.
func newQueue(tb testing.TB, maxLen int64) (*queue.Queue, *redis.Client) {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: env.Redis.Addr()})
	tb.Cleanup(func() { _ = rdb.Close() })
	q := queue.New(rdb, queue.Options{Prefix: env.NewPrefix(tb), MaxLen: maxLen})
	if err := q.Setup(context.Background()); err != nil {
		tb.Fatalf("setup: %v", err)
	}
	return q, rdb
}

func msg(n int) queue.Message {
	return queue.Message{
		Token:      queue.NewToken(),
		ReceivedAt: time.Now(),
		Count:      n,
		Body:       fmt.Appendf(nil, `[{"n":%d,"bytes":"\u0000\xff"}]`, n),
	}
}

func mustf(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}

func depth(t *testing.T, q *queue.Queue) queue.Depth {
	t.Helper()
	d, err := q.Depth(context.Background())
	mustf(t, err == nil, "depth: %v", err)
	return d
}

func TestAppendReadAckRoundTrip(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, 1000)
	ctx := context.Background()
	m := msg(3)
	m.ReceivedAt = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	before := time.Now().Add(-time.Second)
	id, err := q.Append(ctx, m)
	mustf(t, err == nil && id != "", "append: %q %v", id, err)
	mustf(t, depth(t, q) == queue.Depth{Backlog: 3, Entries: 1}, "depth after append: %+v", depth(t, q))

	got, err := q.Read(ctx, "c1", 10, -1)
	mustf(t, err == nil && len(got) == 1, "read: %d entries, %v", len(got), err)
	e := got[0]
	mustf(t, e.ID == id && e.Token == m.Token && e.Count == 3 && string(e.Body) == string(m.Body) && e.Err == nil && !e.Deleted,
		"entry %+v, want %+v", e, m)
	mustf(t, e.ReceivedAt.Equal(m.ReceivedAt), "received at %v, want %v (nanoseconds kept)", e.ReceivedAt, m.ReceivedAt)
	mustf(t, e.QueuedAt().After(before) && e.QueuedAt().Before(time.Now().Add(time.Second)), "queued at %v", e.QueuedAt())
	mustf(t, depth(t, q) == queue.Depth{Backlog: 3, Pending: 1, Entries: 1}, "depth after read: %+v", depth(t, q))

	// Nothing more to read: a blocking read times out empty.
	more, err := q.Read(ctx, "c1", 10, 50*time.Millisecond)
	mustf(t, err == nil && len(more) == 0, "second read: %d entries, %v", len(more), err)

	n, err := q.Ack(ctx, got)
	mustf(t, err == nil && n == 1, "ack: %d %v", n, err)
	mustf(t, depth(t, q) == queue.Depth{}, "depth after ack: %+v (acked entries are deleted)", depth(t, q))
	n, err = q.Ack(ctx, nil)
	mustf(t, err == nil && n == 0, "ack of nothing: %d %v", n, err)
}

// Entries are delivered in append order, each to one consumer only.
func TestReadDeliversOnceInOrder(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, 1000)
	ctx := context.Background()
	var ids []string
	for i := range 10 {
		id, err := q.Append(ctx, msg(i+1))
		mustf(t, err == nil, "append: %v", err)
		ids = append(ids, id)
	}
	a, err := q.Read(ctx, "a", 4, -1)
	mustf(t, err == nil && len(a) == 4, "read a: %d %v", len(a), err)
	b, err := q.Read(ctx, "b", 100, -1)
	mustf(t, err == nil && len(b) == 6, "read b: %d %v", len(b), err)
	var got []string
	for _, e := range append(a, b...) {
		got = append(got, e.ID)
	}
	mustf(t, slices.Equal(got, ids), "delivered %v, appended %v", got, ids)
	mustf(t, slices.IsSortedFunc(ids, cmpID), "IDs not increasing: %v", ids)
}

func cmpID(a, b string) int {
	var am, as, bm, bs int64
	fmt.Sscanf(a, "%d-%d", &am, &as)
	fmt.Sscanf(b, "%d-%d", &bm, &bs)
	if am != bm {
		return int(am - bm)
	}
	return int(as - bs)
}

func TestAckTwiceDecrementsOnce(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, 1000)
	ctx := context.Background()
	for _, n := range []int{5, 7} {
		_, err := q.Append(ctx, msg(n))
		mustf(t, err == nil, "append: %v", err)
	}
	got, err := q.Read(ctx, "c", 10, -1)
	mustf(t, err == nil && len(got) == 2, "read: %v", err)
	for i, want := range []int{1, 0, 0} {
		n, err := q.Ack(ctx, got[:1])
		mustf(t, err == nil && n == want, "ack %d: %d (%v), want %d", i, n, err, want)
		mustf(t, depth(t, q).Backlog == 7, "backlog after ack %d: %+v, want 7", i, depth(t, q))
	}
	// A batch mixing an acknowledged entry and a pending one.
	n, err := q.Ack(ctx, got)
	mustf(t, err == nil && n == 1, "mixed ack: %d %v", n, err)
	mustf(t, depth(t, q) == queue.Depth{}, "depth: %+v", depth(t, q))
}

// Backpressure: Append refuses once the backlog is at or over MaxLen and
// accepts again when acknowledgements bring it below.
func TestBackpressure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name    string
		maxLen  int64
		appends []int  // event counts
		refused []bool // per append
	}{
		{"under the limit", 10, []int{4, 5}, []bool{false, false}},
		{"a request may cross the limit", 10, []int{9, 50, 1}, []bool{false, false, true}},
		{"at the limit", 10, []int{10, 1}, []bool{false, true}},
		{"limit of one", 1, []int{1, 1, 1}, []bool{false, true, true}},
		{"empty request at the limit", 2, []int{2, 0}, []bool{false, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, _ := newQueue(t, tc.maxLen)
			backlog, entries := int64(0), int64(0)
			for i, n := range tc.appends {
				_, err := q.Append(ctx, msg(n))
				if tc.refused[i] {
					mustf(t, errors.Is(err, queue.ErrBackpressure), "append %d: %v, want ErrBackpressure", i, err)
				} else {
					mustf(t, err == nil, "append %d: %v", i, err)
					backlog += int64(n)
					entries++
				}
				d := depth(t, q)
				mustf(t, d.Backlog == backlog && d.Entries == entries, "after append %d: %+v, want backlog %d in %d entries", i, d, backlog, entries)
			}
		})
	}
	t.Run("acknowledging reopens", func(t *testing.T) {
		t.Parallel()
		q, _ := newQueue(t, 10)
		for range 2 {
			_, err := q.Append(ctx, msg(5))
			mustf(t, err == nil, "append: %v", err)
		}
		_, err := q.Append(ctx, msg(1))
		mustf(t, errors.Is(err, queue.ErrBackpressure), "want backpressure, got %v", err)
		got, err := q.Read(ctx, "c", 1, -1)
		mustf(t, err == nil && len(got) == 1, "read: %v", err)
		_, err = q.Ack(ctx, got)
		mustf(t, err == nil, "ack: %v", err)
		_, err = q.Append(ctx, msg(1))
		mustf(t, err == nil, "append after ack: %v", err)
		mustf(t, depth(t, q).Backlog == 6, "backlog %+v", depth(t, q))
	})
}

func TestReadPending(t *testing.T) {
	t.Parallel()
	q, rdb := newQueue(t, 1000)
	ctx := context.Background()
	for i := range 4 {
		_, err := q.Append(ctx, msg(i+1))
		mustf(t, err == nil, "append: %v", err)
	}
	got, err := q.Read(ctx, "c1", 3, -1)
	mustf(t, err == nil && len(got) == 3, "read: %v", err)
	_, err = q.Read(ctx, "c2", 3, -1)
	mustf(t, err == nil, "read c2: %v", err)
	_, err = q.Ack(ctx, got[1:2])
	mustf(t, err == nil, "ack: %v", err)

	pend, err := q.ReadPending(ctx, "c1", "0", 10)
	mustf(t, err == nil && len(pend) == 2, "pending of c1: %d %v", len(pend), err)
	mustf(t, pend[0].ID == got[0].ID && pend[1].ID == got[2].ID, "pending %v, want %s and %s", pend, got[0].ID, got[2].ID)
	mustf(t, pend[0].Token == got[0].Token && string(pend[1].Body) == string(got[2].Body), "pending entries not complete: %+v", pend)
	after, err := q.ReadPending(ctx, "c1", got[0].ID, 10)
	mustf(t, err == nil && len(after) == 1 && after[0].ID == got[2].ID, "pending after %s: %+v %v", got[0].ID, after, err)
	one, err := q.ReadPending(ctx, "c1", "0", 1)
	mustf(t, err == nil && len(one) == 1, "count 1: %d %v", len(one), err)
	none, err := q.ReadPending(ctx, "nobody", "0", 10)
	mustf(t, err == nil && len(none) == 0, "pending of an unknown consumer: %d %v", len(none), err)
	c2, err := q.ReadPending(ctx, "c2", "0", 10)
	mustf(t, err == nil && len(c2) == 1, "pending of c2: %d %v", len(c2), err)

	// An entry deleted while pending (XDEL without XACK) is reported as
	// Deleted, to be acknowledged only.
	mustf(t, rdb.XDel(ctx, q.Stream(), got[0].ID).Err() == nil, "xdel")
	pend, err = q.ReadPending(ctx, "c1", "0", 10)
	mustf(t, err == nil && len(pend) == 2 && pend[0].Deleted && pend[0].ID == got[0].ID && !pend[1].Deleted,
		"pending after XDEL: %+v %v", pend, err)
	mustf(t, pend[0].Token != "" && pend[0].Token != pend[1].Token, "deleted entry token %q", pend[0].Token)
}

func TestClaim(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, 1000)
	ctx := context.Background()
	for i := range 3 {
		_, err := q.Append(ctx, msg(i+1))
		mustf(t, err == nil, "append: %v", err)
	}
	got, err := q.Read(ctx, "dead", 10, -1)
	mustf(t, err == nil && len(got) == 3, "read: %v", err)

	// Not idle long enough: nothing is claimed.
	claimed, _, err := q.Claim(ctx, "alive", time.Hour, "0-0", 10)
	mustf(t, err == nil && len(claimed) == 0, "claim with a long min idle: %d %v", len(claimed), err)
	pend, _ := q.ReadPending(ctx, "dead", "0", 10)
	mustf(t, len(pend) == 3, "dead still owns %d", len(pend))

	// Once idle long enough, another consumer takes them, in order, whole.
	const minIdle = 150 * time.Millisecond
	waitFor(t, 10*time.Second, "entries idle for "+minIdle.String(), func() bool {
		claimed, _, err = q.Claim(ctx, "alive", minIdle, "0-0", 2)
		return err == nil && len(claimed) > 0
	})
	mustf(t, len(claimed) == 2 && claimed[0].ID == got[0].ID && claimed[1].Token == got[1].Token, "claimed %+v", claimed)
	rest, next, err := q.Claim(ctx, "alive", minIdle, "0-0", 10)
	mustf(t, err == nil && len(rest) == 1 && rest[0].ID == got[2].ID && next == "0-0", "second claim: %+v next %q %v", rest, next, err)

	pend, _ = q.ReadPending(ctx, "dead", "0", 10)
	mustf(t, len(pend) == 0, "dead still owns %d entries", len(pend))
	pend, _ = q.ReadPending(ctx, "alive", "0", 10)
	mustf(t, len(pend) == 3, "alive owns %d entries, want 3", len(pend))
	// Just claimed: not idle, not claimable again at once.
	again, _, err := q.Claim(ctx, "third", time.Hour, "0-0", 10)
	mustf(t, err == nil && len(again) == 0, "claimed again: %d %v", len(again), err)
	n, err := q.Ack(ctx, append(claimed, rest...))
	mustf(t, err == nil && n == 3, "ack claimed: %d %v", n, err)
	mustf(t, depth(t, q) == queue.Depth{}, "depth %+v", depth(t, q))
}

func TestDeadLetterMovesOnce(t *testing.T) {
	t.Parallel()
	q, rdb := newQueue(t, 1000)
	ctx := context.Background()
	_, err := q.Append(ctx, msg(4))
	mustf(t, err == nil, "append: %v", err)
	_, err = q.Append(ctx, msg(2))
	mustf(t, err == nil, "append: %v", err)
	got, err := q.Read(ctx, "c", 10, -1)
	mustf(t, err == nil && len(got) == 2, "read: %v", err)

	moved, err := q.DeadLetter(ctx, got[0], "poison")
	mustf(t, err == nil && moved, "dead-letter: %v %v", moved, err)
	mustf(t, depth(t, q) == queue.Depth{Backlog: 2, Pending: 1, DeadLettered: 1, Entries: 1}, "depth %+v", depth(t, q))
	moved, err = q.DeadLetter(ctx, got[0], "poison again")
	mustf(t, err == nil && !moved, "second dead-letter: %v %v", moved, err)
	n, err := q.Ack(ctx, got[:1])
	mustf(t, err == nil && n == 0, "ack of a dead-lettered entry: %d %v", n, err)
	mustf(t, depth(t, q) == queue.Depth{Backlog: 2, Pending: 1, DeadLettered: 1, Entries: 1}, "depth %+v", depth(t, q))

	dead, err := rdb.XRange(ctx, q.DeadStream(), "-", "+").Result()
	mustf(t, err == nil && len(dead) == 1, "dead stream: %d %v", len(dead), err)
	v := dead[0].Values
	mustf(t, v["origin"] == got[0].ID && v["reason"] == "poison" && v["t"] == got[0].Token && v["n"] == "4" &&
		v["e"] == string(got[0].Body), "dead entry %v", v)
	// An acknowledged entry cannot be dead-lettered.
	_, err = q.Ack(ctx, got[1:])
	mustf(t, err == nil, "ack: %v", err)
	moved, err = q.DeadLetter(ctx, got[1], "late")
	mustf(t, err == nil && !moved, "dead-letter after ack: %v %v", moved, err)
	mustf(t, depth(t, q) == queue.Depth{DeadLettered: 1}, "depth %+v", depth(t, q))
}

// Entries the service did not write parse with Err set (they are
// dead-lettered, never applied).
func TestUnreadableEntries(t *testing.T) {
	t.Parallel()
	q, rdb := newQueue(t, 1000)
	ctx := context.Background()
	cases := []struct {
		name   string
		values []any
		token  bool // the entry's own token survives
	}{
		{"only a token", []any{"t", "tok-1"}, false},
		{"no body", []any{"t", "tok-2", "r", "1", "n", "1"}, false},
		{"empty token", []any{"t", "", "r", "1", "n", "1", "e", "[]"}, false},
		{"unknown fields", []any{"x", "y"}, false},
		{"bad receive time", []any{"t", "tok-5", "r", "yesterday", "n", "1", "e", "[]"}, true},
		{"bad count", []any{"t", "tok-6", "r", "1", "n", "x", "e", "[]"}, true},
		{"negative count", []any{"t", "tok-7", "r", "1", "n", "-1", "e", "[]"}, true},
	}
	ids := map[string]string{}
	for _, tc := range cases {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: q.Stream(), Values: tc.values}).Result()
		mustf(t, err == nil, "xadd: %v", err)
		ids[id] = tc.name
	}
	got, err := q.Read(ctx, "c", 100, -1)
	mustf(t, err == nil && len(got) == len(cases), "read: %d %v", len(got), err)
	for i, e := range got {
		tc := cases[i]
		if e.Err == nil || e.Deleted {
			t.Errorf("%s: parsed without error: %+v", tc.name, e)
		}
		if e.Token == "" || (tc.token && e.Token != tc.values[1]) {
			t.Errorf("%s: token %q", tc.name, e.Token)
		}
		if ids[e.ID] != tc.name {
			t.Errorf("entry %s is %s, want %s", e.ID, ids[e.ID], tc.name)
		}
	}
	// Each unreadable entry has a token of its own: the ledger keys on it.
	tokens := map[string]bool{}
	for _, e := range got {
		tokens[e.Token] = true
	}
	mustf(t, len(tokens) == len(got), "tokens not distinct: %v", tokens)
}

func TestDepth(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: env.Redis.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	// Before Setup (no stream, no group): all zero, no error.
	fresh := queue.New(rdb, queue.Options{Prefix: env.NewPrefix(t), MaxLen: 10})
	d, err := fresh.Depth(context.Background())
	mustf(t, err == nil && d == queue.Depth{}, "depth of nothing: %+v %v", d, err)

	q, _ := newQueue(t, 1000)
	ctx := context.Background()
	for _, n := range []int{1, 2, 3} {
		_, err := q.Append(ctx, msg(n))
		mustf(t, err == nil, "append: %v", err)
	}
	mustf(t, depth(t, q) == queue.Depth{Backlog: 6, Entries: 3}, "%+v", depth(t, q))
	got, _ := q.Read(ctx, "c", 2, -1)
	mustf(t, depth(t, q) == queue.Depth{Backlog: 6, Pending: 2, Entries: 3}, "%+v", depth(t, q))
	_, _ = q.DeadLetter(ctx, got[1], "x")
	mustf(t, depth(t, q) == queue.Depth{Backlog: 4, Pending: 1, DeadLettered: 1, Entries: 2}, "%+v", depth(t, q))
	_, _ = q.Ack(ctx, got[:1])
	mustf(t, depth(t, q) == queue.Depth{Backlog: 3, DeadLettered: 1, Entries: 1}, "%+v", depth(t, q))
}

// Setup is idempotent, and a group lost with Redis's data is recreated by
// the next read, which reports the loss; reading then goes on.
func TestSetupAndLostGroup(t *testing.T) {
	t.Parallel()
	q, rdb := newQueue(t, 1000)
	ctx := context.Background()
	mustf(t, q.Setup(ctx) == nil, "second setup")
	mustf(t, q.Ping(ctx) == nil, "ping")
	mustf(t, rdb.Del(ctx, q.Stream()).Err() == nil, "del stream")
	_, err := q.Read(ctx, "c", 10, -1)
	mustf(t, err != nil, "read without a group succeeded")
	_, err = q.Append(ctx, msg(1))
	mustf(t, err == nil, "append: %v", err)
	got, err := q.Read(ctx, "c", 10, -1)
	mustf(t, err == nil && len(got) == 1, "read after the group was recreated: %d %v", len(got), err)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	wait := 5 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(wait) // polling interval of a condition with a deadline
		wait = min(2*wait, 100*time.Millisecond)
	}
}
