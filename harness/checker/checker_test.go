package checker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// hist builds a history from compact request descriptions.
type req struct {
	keys []string // "topic/id"
	out  history.Type
	none bool // no completion recorded (the client died)
}

func key(s string) history.Key {
	t, id, _ := strings.Cut(s, "/")
	return history.Key{Topic: t, ID: id}
}

func build(reqs ...req) []history.Op {
	r, _ := history.NewRecorder("")
	for i, q := range reqs {
		ks := make([]history.Key, len(q.keys))
		for j, k := range q.keys {
			ks[j] = key(k)
		}
		inv := r.Invoke(i, history.FPublish, ks, "")
		if !q.none {
			r.Complete(inv, q.out, inv.Time.Add(time.Millisecond), 200, "", "")
		}
	}
	return r.Ops()
}

func stored(ks ...string) map[history.Key]int {
	m := map[history.Key]int{}
	for _, k := range ks {
		m[key(k)]++
	}
	return m
}

func stats(received, unique, dropped int64) checker.Stats {
	return checker.Stats{Received: received, UniqueProcessed: unique, DuplicatedDropped: dropped}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		ops   []history.Op
		rb    checker.Readback
		valid bool
		check func(t *testing.T, r checker.Result)
	}{
		{
			name:  "all acknowledged and stored",
			ops:   build(req{keys: []string{"a/1", "a/2"}, out: history.OK}, req{keys: []string{"a/1"}, out: history.OK}),
			rb:    checker.Readback{Stored: stored("a/1", "a/2"), After: stats(3, 2, 1), Drained: true},
			valid: true,
			check: func(t *testing.T, r checker.Result) {
				if r.Attempted != 2 || r.Acknowledged != 2 || r.AcknowledgedCopies != 3 || r.Stored != 2 {
					t.Errorf("counts: %+v", r)
				}
			},
		},
		{
			name:  "lost: acknowledged, not stored",
			ops:   build(req{keys: []string{"a/1", "a/2"}, out: history.OK}),
			rb:    checker.Readback{Stored: stored("a/1"), After: stats(1, 1, 0), Drained: true},
			valid: false,
			check: func(t *testing.T, r checker.Result) {
				if r.Lost != 1 || len(r.Examples) == 0 || r.Examples[0] != key("a/2") {
					t.Errorf("lost = %d, examples %v", r.Lost, r.Examples)
				}
				if r.StatsExact {
					t.Error("received below acknowledged copies must not be exact")
				}
			},
		},
		{
			name:  "duplicated: stored twice",
			ops:   build(req{keys: []string{"a/1"}, out: history.OK}, req{keys: []string{"a/1"}, out: history.OK}),
			rb:    checker.Readback{Stored: stored("a/1", "a/1"), After: stats(2, 2, 0), Drained: true},
			valid: false,
			check: func(t *testing.T, r checker.Result) {
				if r.Duplicated != 1 {
					t.Errorf("duplicated = %d", r.Duplicated)
				}
			},
		},
		{
			name:  "unexpected: stored, never attempted",
			ops:   build(req{keys: []string{"a/1"}, out: history.OK}),
			rb:    checker.Readback{Stored: stored("a/1", "z/9"), After: stats(2, 2, 0), Drained: true},
			valid: false,
			check: func(t *testing.T, r checker.Result) {
				if r.Unexpected != 1 {
					t.Errorf("unexpected = %d", r.Unexpected)
				}
			},
		},
		{
			name:  "unexpected: stored although the request definitely failed",
			ops:   build(req{keys: []string{"a/1"}, out: history.Fail}),
			rb:    checker.Readback{Stored: stored("a/1"), After: stats(1, 1, 0), Drained: true},
			valid: false,
			check: func(t *testing.T, r checker.Result) {
				if r.Unexpected != 1 {
					t.Errorf("unexpected = %d", r.Unexpected)
				}
			},
		},
		{
			name: "recovered: unknown outcome that landed, and one that did not",
			ops: build(req{keys: []string{"a/1"}, out: history.Info}, req{keys: []string{"a/2"}, none: true},
				req{keys: []string{"a/3"}, out: history.Fail}),
			rb:    checker.Readback{Stored: stored("a/1"), After: stats(1, 1, 0), Drained: true},
			valid: true,
			check: func(t *testing.T, r checker.Result) {
				if r.Recovered != 1 || r.Lost != 0 || r.UnknownCopies != 2 || r.FailedCopies != 1 {
					t.Errorf("result: %+v", r)
				}
				if r.Requests.Info != 2 || r.Requests.Fail != 1 {
					t.Errorf("requests: %+v", r.Requests)
				}
			},
		},
		{
			name:  "stats: received counts a redelivery twice",
			ops:   build(req{keys: []string{"a/1", "a/2"}, out: history.OK}),
			rb:    checker.Readback{Stored: stored("a/1", "a/2"), After: stats(4, 2, 2), Drained: true},
			valid: false,
			check: func(t *testing.T, r checker.Result) {
				if r.StatsExact {
					t.Error("received above copies sent must not be exact")
				}
			},
		},
		{
			name:  "stats: unique_processed differs from stored keys",
			ops:   build(req{keys: []string{"a/1", "a/2"}, out: history.OK}),
			rb:    checker.Readback{Stored: stored("a/1", "a/2"), After: stats(2, 1, 1), Drained: true},
			valid: false,
		},
		{
			name:  "stats: received != unique + dropped",
			ops:   build(req{keys: []string{"a/1", "a/1"}, out: history.OK}),
			rb:    checker.Readback{Stored: stored("a/1"), After: stats(2, 1, 0), Drained: true},
			valid: false,
		},
		{
			name:  "stats: not drained",
			ops:   build(req{keys: []string{"a/1"}, out: history.OK}),
			rb:    checker.Readback{Stored: stored("a/1"), After: checker.Stats{Received: 1, UniqueProcessed: 1, Pending: 1}, Drained: true},
			valid: false,
		},
		{
			name:  "stats: dead letters",
			ops:   build(req{keys: []string{"a/1"}, out: history.OK}),
			rb:    checker.Readback{Stored: stored("a/1"), After: checker.Stats{Received: 1, UniqueProcessed: 1, DeadLettered: 1}, Drained: true},
			valid: false,
		},
		{
			name: "stats are deltas over the run",
			ops:  build(req{keys: []string{"a/1"}, out: history.OK}),
			rb: checker.Readback{Stored: stored("a/1"), Before: stats(100, 70, 30), After: stats(101, 71, 30), Drained: true,
				AuditBefore: &checker.Audit{Received: 100, Queued: 100, Processed: 70, Dropped: 30},
				AuditAfter:  &checker.Audit{Received: 101, Queued: 101, Processed: 71, Dropped: 30}},
			valid: true,
		},
		{
			name: "audit: a PROCESSED entry missing",
			ops:  build(req{keys: []string{"a/1", "a/2"}, out: history.OK}),
			rb: checker.Readback{Stored: stored("a/1", "a/2"), After: stats(2, 2, 0), Drained: true,
				AuditAfter: &checker.Audit{Received: 2, Queued: 2, Processed: 1}},
			valid: false,
			check: func(t *testing.T, r checker.Result) {
				if r.AuditExact {
					t.Error("audit must not be exact")
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := checker.Check(c.ops, c.rb)
			if r.Valid != c.valid {
				t.Fatalf("valid = %v, want %v; violations: %v", r.Valid, c.valid, r.Violations)
			}
			if !c.valid && len(r.Violations) == 0 {
				t.Fatal("invalid without a violation named")
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/history.jsonl"
	r, err := history.NewRecorder(path)
	if err != nil {
		t.Fatal(err)
	}
	inv := r.Invoke(3, history.FPublish, []history.Key{key("a/1")}, "")
	r.Complete(inv, history.OK, inv.Time.Add(time.Second), 200, "", "")
	f := r.Invoke(history.NemesisProcess, "kill", nil, "service-0")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ops, err := history.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 3 || ops[1].Req != inv.Req || ops[1].Latency != time.Second || ops[2].Req != f.Req {
		t.Fatalf("ops = %+v", ops)
	}
	pairs := history.Pairs(ops, history.FPublish)
	if len(pairs) != 1 || pairs[0].Outcome() != history.OK {
		t.Fatalf("pairs = %+v", pairs)
	}
	if all := history.Pairs(ops, ""); len(all) != 2 || all[1].Outcome() != history.Info {
		t.Fatalf("a fault without completion must read as unknown: %+v", all)
	}
}

// TestIdentityIsTopicAndEventID: one event id under two topics is two
// keys. A store that kept one row for both (deduplicating on event_id
// alone) has lost an acknowledged key (its stats agree with what it stored:
// the lost key is what shows); one that kept both is valid.
func TestIdentityIsTopicAndEventID(t *testing.T) {
	t.Parallel()
	ops := build(req{keys: []string{"a/1", "b/1"}, out: history.OK}, req{keys: []string{"b/1"}, out: history.OK})
	good := checker.Check(ops, checker.Readback{Stored: stored("a/1", "b/1"), After: stats(3, 2, 1), Drained: true})
	if !good.Valid || good.Attempted != 2 || good.Acknowledged != 2 || good.Stored != 2 {
		t.Errorf("a/1 and b/1 both stored: %+v", good)
	}
	bad := checker.Check(ops, checker.Readback{Stored: stored("a/1"), After: stats(3, 1, 2), Drained: true})
	if bad.Valid || bad.Lost != 1 || len(bad.Examples) == 0 || bad.Examples[0] != key("b/1") {
		t.Errorf("b/1 deduplicated against a/1: valid %v, lost %d, examples %v; want b/1 lost", bad.Valid, bad.Lost, bad.Examples)
	}
}
