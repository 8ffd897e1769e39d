package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// step is one ApplyBatch call and what it must report.
type step struct {
	entries          []string // names of the case's entries, in stream order
	fresh, seen      []int
	seenFailed       []int
	inserted, drops  int
	failBefore       string // an entry to RecordFailure before the call
	failBeforeResult bool
}

type conformanceCase struct {
	name    string
	entries map[string][]event.Event // entry name -> events; the token is "tok-"+name
	steps   []step
	rows    map[key]string // the stored rows: key -> payload message (the winning copy)
	winner  map[key]string // key -> name of the entry whose copy won (optional)
	dropped map[key]int
	failed  int64
}

var conformance = []conformanceCase{
	{
		name: "first copy in stream order wins across entries",
		entries: map[string][]event.Event{
			"e1": {mkEv("a", "1", "e1"), mkEv("a", "2", "e1")},
			"e2": {mkEv("a", "1", "e2")},
		},
		steps:   []step{{entries: []string{"e1", "e2"}, fresh: []int{0, 1}, inserted: 2, drops: 1}},
		rows:    map[key]string{{"a", "1"}: "e1", {"a", "2"}: "e1"},
		winner:  map[key]string{{"a", "1"}: "e1"},
		dropped: map[key]int{{"a", "1"}: 1},
	},
	{
		name: "later entry first in the batch wins",
		entries: map[string][]event.Event{
			"e1": {mkEv("a", "1", "e1")},
			"e2": {mkEv("a", "1", "e2")},
		},
		steps:   []step{{entries: []string{"e2", "e1"}, fresh: []int{0, 1}, inserted: 1, drops: 1}},
		rows:    map[key]string{{"a", "1"}: "e2"},
		winner:  map[key]string{{"a", "1"}: "e2"},
		dropped: map[key]int{{"a", "1"}: 1},
	},
	{
		name: "first copy inside one entry wins",
		entries: map[string][]event.Event{
			"e1": {mkEv("a", "1", "first"), mkEv("a", "1", "second"), mkEv("b", "1", "x"), mkEv("a", "1", "third")},
		},
		steps:   []step{{entries: []string{"e1"}, fresh: []int{0}, inserted: 2, drops: 2}},
		rows:    map[key]string{{"a", "1"}: "first", {"b", "1"}: "x"},
		dropped: map[key]int{{"a", "1"}: 2},
	},
	{
		name: "an earlier batch wins over a later one",
		entries: map[string][]event.Event{
			"e1": {mkEv("a", "1", "e1")},
			"e2": {mkEv("a", "1", "e2"), mkEv("b", "1", "e2"), mkEv("b", "1", "e2-again")},
		},
		steps: []step{
			{entries: []string{"e1"}, fresh: []int{0}, inserted: 1},
			{entries: []string{"e2"}, fresh: []int{0}, inserted: 1, drops: 2},
		},
		rows:    map[key]string{{"a", "1"}: "e1", {"b", "1"}: "e2"},
		dropped: map[key]int{{"a", "1"}: 1, {"b", "1"}: 1},
	},
	{
		name: "keys differ by topic, case and bytes",
		entries: map[string][]event.Event{
			"e1": {mkEv("a", "1", "a"), mkEv("b", "1", "b"), mkEv("", "1", "empty"), mkEv("A", "1", "A"),
				mkEv("a", "x", "x"), mkEv("a", "X", "X"), mkEv("a", "é", "é"), mkEv("a", "e\u0301", "e+accent")},
		},
		steps: []step{{entries: []string{"e1"}, fresh: []int{0}, inserted: 8}},
		rows: map[key]string{{"a", "1"}: "a", {"b", "1"}: "b", {"", "1"}: "empty", {"A", "1"}: "A",
			{"a", "x"}: "x", {"a", "X"}: "X", {"a", "é"}: "é", {"a", "e\u0301"}: "e+accent"},
	},
	{
		name: "an entry applied twice changes nothing the second time",
		entries: map[string][]event.Event{
			"e1": {mkEv("a", "1", "e1"), mkEv("a", "1", "dup"), mkEv("a", "2", "e1")},
		},
		steps: []step{
			{entries: []string{"e1"}, fresh: []int{0}, inserted: 2, drops: 1},
			{entries: []string{"e1"}, seen: []int{0}},
		},
		rows:    map[key]string{{"a", "1"}: "e1", {"a", "2"}: "e1"},
		dropped: map[key]int{{"a", "1"}: 1},
	},
	{
		name: "a redelivered entry among new ones",
		entries: map[string][]event.Event{
			"e1": {mkEv("a", "1", "e1")},
			"e2": {mkEv("a", "1", "e2"), mkEv("a", "2", "e2")},
			"e3": {mkEv("a", "3", "e3")},
		},
		steps: []step{
			{entries: []string{"e1"}, fresh: []int{0}, inserted: 1},
			{entries: []string{"e2", "e1", "e3"}, fresh: []int{0, 2}, seen: []int{1}, inserted: 2, drops: 1},
		},
		rows:    map[key]string{{"a", "1"}: "e1", {"a", "2"}: "e2", {"a", "3"}: "e3"},
		dropped: map[key]int{{"a", "1"}: 1},
	},
	{
		name: "the same token twice in one batch is one entry",
		entries: map[string][]event.Event{
			"e1": {mkEv("a", "1", "e1"), mkEv("a", "2", "e1")},
		},
		steps:   []step{{entries: []string{"e1", "e1"}, fresh: []int{0}, seen: []int{1}, inserted: 2}},
		rows:    map[key]string{{"a", "1"}: "e1", {"a", "2"}: "e1"},
		dropped: map[key]int{},
	},
	{
		name: "an entry recorded as failed is reported in SeenFailed",
		entries: map[string][]event.Event{
			"bad": {mkEv("a", "1", "bad"), mkEv("a", "2", "bad")},
			"ok":  {mkEv("a", "1", "ok")},
		},
		steps: []step{
			{failBefore: "bad", failBeforeResult: true, entries: []string{"bad"}, seenFailed: []int{0}},
			{failBefore: "bad", failBeforeResult: false, entries: []string{"ok", "bad"}, fresh: []int{0}, seenFailed: []int{1}, inserted: 1},
		},
		rows:   map[key]string{{"a", "1"}: "ok"},
		failed: 2,
	},
	{
		name:    "an entry without events is recorded",
		entries: map[string][]event.Event{"empty": nil, "e1": {mkEv("a", "1", "e1")}},
		steps: []step{
			{entries: []string{"empty", "e1"}, fresh: []int{0, 1}, inserted: 1},
			{entries: []string{"empty"}, seen: []int{0}},
		},
		rows: map[key]string{{"a", "1"}: "e1"},
	},
	{
		name:    "an empty batch",
		entries: map[string][]event.Event{},
		steps:   []step{{entries: nil}},
		rows:    map[key]string{},
	},
}

// ApplyBatch conformance, for every upsert method.
func TestApplyBatchConformance(t *testing.T) {
	t.Parallel()
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			for _, tc := range conformance {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					runConformance(t, newStore(t, method), tc)
				})
			}
		})
	}
}

func runConformance(t *testing.T, st *store.Store, tc conformanceCase) {
	ctx := context.Background()
	built := map[string]store.Entry{}
	for name, evs := range tc.entries {
		built[name] = mkEntry("tok-"+name, evs...)
	}
	for i, s := range tc.steps {
		if s.failBefore != "" {
			fresh, err := st.RecordFailure(ctx, "w", store.Failure{Entry: built[s.failBefore], Reason: "test"})
			if err != nil || fresh != s.failBeforeResult {
				t.Fatalf("step %d: RecordFailure = %v, %v; want %v", i, fresh, err, s.failBeforeResult)
			}
		}
		var batch []store.Entry
		for _, name := range s.entries {
			batch = append(batch, built[name])
		}
		before := readState(t, st)
		res, err := st.ApplyBatch(ctx, "w", batch)
		if err != nil {
			t.Fatalf("step %d: ApplyBatch: %v", i, err)
		}
		if !slices.Equal(res.Fresh, s.fresh) || !slices.Equal(res.Seen, s.seen) || !slices.Equal(res.SeenFailed, s.seenFailed) ||
			res.Inserted != s.inserted || res.Dropped != s.drops {
			t.Fatalf("step %d: Applied %+v, want fresh %v seen %v seenFailed %v inserted %d dropped %d",
				i, res, s.fresh, s.seen, s.seenFailed, s.inserted, s.drops)
		}
		after := readState(t, st)
		if len(s.fresh) == 0 && !statesEqual(before, after) {
			t.Fatalf("step %d: a batch with nothing fresh changed the store:\n%+v\n%+v", i, before, after)
		}
		checkConsistent(t, after)
	}
	s := readState(t, st)
	got := map[key]string{}
	for k, r := range s.Rows {
		got[k] = r.Message
	}
	if fmt.Sprint(got) != fmt.Sprint(tc.rows) {
		t.Errorf("rows %v, want %v", got, tc.rows)
	}
	for k, name := range tc.winner {
		if s.Rows[k].EntryID != built[name].EntryID {
			t.Errorf("row %v from entry %s, want %s (%s)", k, s.Rows[k].EntryID, built[name].EntryID, name)
		}
	}
	if tc.dropped != nil && fmt.Sprint(s.Dropped) != fmt.Sprint(tc.dropped) {
		t.Errorf("dropped %v, want %v", s.Dropped, tc.dropped)
	}
	if s.Failed != tc.failed {
		t.Errorf("%d failed rows, want %d", s.Failed, tc.failed)
	}
	for name := range tc.entries {
		o, ok := s.Ledger["tok-"+name]
		applied := false
		for _, st := range tc.steps {
			applied = applied || slices.Contains(st.entries, name) || st.failBefore == name
		}
		if ok != applied {
			t.Errorf("ledger has %s: %v, want %v", name, ok, applied)
		}
		if ok && (o == "f") != (name == "bad") {
			t.Errorf("ledger outcome of %s: %s", name, o)
		}
	}
}

func statesEqual(a, b state) bool { return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b) }

// RecordFailure of an unreadable entry (no events) writes one FAILED row
// with an empty key, once.
func TestRecordFailureUnreadableEntry(t *testing.T) {
	t.Parallel()
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, method)
			ctx := context.Background()
			f := store.Failure{Entry: mkEntry("tok-poison"), Reason: "undecodable"}
			for i, want := range []bool{true, false} {
				fresh, err := st.RecordFailure(ctx, "w", f)
				if err != nil || fresh != want {
					t.Fatalf("call %d: %v, %v; want %v", i, fresh, err, want)
				}
			}
			s := readState(t, st)
			checkConsistent(t, s)
			if s.Failed != 1 || s.Counts.Failed != 1 || s.Ledger["tok-poison"] != "f" {
				t.Fatalf("state %+v", s)
			}
			var reason string
			if err := st.Pool().QueryRow(ctx, "SELECT reason FROM failed").Scan(&reason); err != nil || reason != "undecodable" {
				t.Fatalf("reason %q (%v)", reason, err)
			}
		})
	}
}

// An event PostgreSQL refuses is a data error: not transient, nothing of the
// batch applied, and the store goes on working.
func TestApplyBatchDataErrors(t *testing.T) {
	t.Parallel()
	bad := func(mutate func(e *event.Event)) event.Event {
		e := mkEv("t", "bad", "bad")
		mutate(&e)
		return e
	}
	cases := []struct {
		name string
		ev   event.Event
	}{
		{"payload not JSON", bad(func(e *event.Event) { e.Payload = json.RawMessage(`not json`) })},
		{"payload truncated", bad(func(e *event.Event) { e.Payload = json.RawMessage(`{"message":`) })},
		{"payload with \\u0000", bad(func(e *event.Event) { e.Payload = json.RawMessage(`{"message":"a\u0000b"}`) })},
		{"payload missing", bad(func(e *event.Event) { e.Payload = nil })},
		{"event_id with NUL", bad(func(e *event.Event) { e.EventID = "a\x00b" })},
		{"topic not UTF-8", bad(func(e *event.Event) { e.Topic = "\xff\xfe" })},
		{"source not UTF-8", bad(func(e *event.Event) { e.Source = "\xc3" })},
	}
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, method)
			ctx := context.Background()
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					good := mkEntry(fmt.Sprintf("good-%d", i), mkEv("t", fmt.Sprint(i), "good"))
					poisoned := mkEntry(fmt.Sprintf("bad-%d", i), mkEv("t", "fine", "x"), tc.ev)
					before := readState(t, st)
					_, err := st.ApplyBatch(ctx, "w", []store.Entry{good, poisoned})
					if err == nil {
						t.Fatal("PostgreSQL accepted the event")
					}
					if !store.IsDataError(err) || store.IsTransient(err) {
						t.Fatalf("IsDataError %v, IsTransient %v for %v", store.IsDataError(err), store.IsTransient(err), err)
					}
					if after := readState(t, st); !statesEqual(before, after) {
						t.Fatalf("a failed batch changed the store:\n%+v\n%+v", before, after)
					}
					// The good entry alone goes through.
					res, err := st.ApplyBatch(ctx, "w", []store.Entry{good})
					if err != nil || res.Inserted != 1 {
						t.Fatalf("good entry after a data error: %+v, %v", res, err)
					}
				})
			}
			checkConsistent(t, readState(t, st))
		})
	}
}

// Errors that are worth retrying are not data errors.
func TestErrorClassification(t *testing.T) {
	t.Parallel()
	st := newStore(t, store.MethodUnnest)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := st.ApplyBatch(ctx, "w", []store.Entry{mkEntry("tok", mkEv("t", "1", "m"))})
	if err == nil || store.IsDataError(err) || !store.IsTransient(err) {
		t.Fatalf("cancelled context: err %v, data %v, transient %v", err, store.IsDataError(err), store.IsTransient(err))
	}
	_, err = st.Pool().Exec(context.Background(), "SELECT pg_sleep(1)", nil)
	if err == nil || store.IsTransient(nil) || store.IsDataError(nil) {
		t.Fatal("nil is neither transient nor a data error")
	}
	// A lost connection: the backend is terminated mid-session.
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	conn, err := st.Pool().Acquire(tctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var pid int
	if err := conn.QueryRow(tctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(tctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(tctx, "SELECT 1")
	if err == nil || store.IsDataError(err) || !store.IsTransient(err) {
		t.Fatalf("terminated connection: err %v, data %v, transient %v", err, store.IsDataError(err), store.IsTransient(err))
	}
}

// Concurrent batches over overlapping keys, in random orders, with some
// entries delivered twice at once (a claim racing a redelivery), finish
// without error (no deadlock) and leave counters equal to the rows.
func TestApplyBatchConcurrent(t *testing.T) {
	t.Parallel()
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			st := newStore(t, method)
			const goroutines, batches = 8, 50
			topics := []string{"a", "B", "c", "", "é"}

			// The entries, built up front: 8 x 50 batches of 1-4 entries of
			// 1-8 events over 400 keys; every 10th batch also carries an
			// entry of another goroutine's (delivered twice, concurrently).
			rng := rand.New(rand.NewPCG(1, 2))
			plan := make([][][]store.Entry, goroutines)
			var all []store.Entry
			for g := range plan {
				plan[g] = make([][]store.Entry, batches)
				for b := range batches {
					for range 1 + rng.IntN(4) {
						var evs []event.Event
						for range 1 + rng.IntN(8) {
							id := fmt.Sprint(rng.IntN(80))
							evs = append(evs, mkEv(topics[rng.IntN(len(topics))], id, fmt.Sprintf("g%d", g)))
						}
						e := mkEntry(fmt.Sprintf("tok-%d-%d-%d", g, b, len(plan[g][b])), evs...)
						plan[g][b] = append(plan[g][b], e)
						all = append(all, e)
					}
				}
			}
			for g := range plan {
				for b := 9; b < batches; b += 10 {
					other := plan[(g+1)%goroutines][b-9]
					plan[g][b] = append(plan[g][b], other[0])
					rng.Shuffle(len(plan[g][b]), func(i, j int) { plan[g][b][i], plan[g][b][j] = plan[g][b][j], plan[g][b][i] })
				}
			}

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					worker := fmt.Sprintf("w%d", g%4) // two goroutines share each worker's counters
					for b, batch := range plan[g] {
						if _, err := st.ApplyBatch(ctx, worker, batch); err != nil {
							errs <- fmt.Errorf("goroutine %d batch %d: %w", g, b, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if t.Failed() {
				t.FailNow()
			}

			keys := map[key]bool{}
			copies := 0
			for _, e := range all {
				for _, ev := range e.Events {
					keys[key{ev.Topic, ev.EventID}] = true
				}
				copies += len(e.Events)
			}
			s := readState(t, st)
			checkConsistent(t, s)
			if len(s.Rows) != len(keys) || s.Counts.Received() != int64(copies) || len(s.Ledger) != len(all) {
				t.Fatalf("%d rows (want %d), received %d (want %d), %d ledger rows (want %d)",
					len(s.Rows), len(keys), s.Counts.Received(), copies, len(s.Ledger), len(all))
			}
		})
	}
}

// The two upsert methods leave identical stores after the same batches.
func TestMethodsAgree(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	var batches [][]store.Entry
	for b := range 30 {
		var batch []store.Entry
		for e := range 1 + rng.IntN(5) {
			var evs []event.Event
			for range rng.IntN(10) {
				evs = append(evs, mkEv(fmt.Sprint(rng.IntN(3)), fmt.Sprint(rng.IntN(50)), fmt.Sprintf("%d-%d", b, e)))
			}
			batch = append(batch, mkEntry(fmt.Sprintf("tok-%d-%d", b, e), evs...))
		}
		if b > 0 && b%5 == 0 {
			batch = append(batch, batches[b-1][0]) // a redelivery
		}
		batches = append(batches, batch)
	}
	results := map[string][]store.Applied{}
	states := map[string]state{}
	for _, method := range methods {
		st := newStore(t, method)
		for _, batch := range batches {
			res, err := st.ApplyBatch(context.Background(), "w", batch)
			if err != nil {
				t.Fatalf("%s: %v", method, err)
			}
			res.StoredAt = time.Time{}
			results[method] = append(results[method], res)
		}
		states[method] = readState(t, st)
		checkConsistent(t, states[method])
	}
	u, c := methods[0], methods[1]
	if fmt.Sprintf("%+v", results[u]) != fmt.Sprintf("%+v", results[c]) {
		t.Errorf("Applied differ:\n%s: %+v\n%s: %+v", u, results[u], c, results[c])
	}
	if !statesEqual(states[u], states[c]) {
		t.Errorf("stores differ:\n%s: %+v\n%s: %+v", u, states[u], c, states[c])
	}
	// Stored values round-trip the same way too.
	ctx := context.Background()
	var dumps []string
	for _, method := range methods {
		st := newStore(t, method)
		e := mkEv("t", "1", "m")
		e.Timestamp = time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.FixedZone("x", -7*3600))
		e.Payload = json.RawMessage(`{"message":"é\"\\","timestamp":"x","n":[1,2.50,1e3],"o":{"k":null}}`)
		e.Source = "sóurce"
		if _, err := st.ApplyBatch(ctx, "w", []store.Entry{mkEntry("tok", e)}); err != nil {
			t.Fatal(err)
		}
		p, err := st.Events(ctx, store.EventsQuery{Limit: 10})
		if err != nil || len(p.Events) != 1 {
			t.Fatalf("%s: %+v %v", method, p, err)
		}
		got := p.Events[0]
		if !got.Timestamp.Equal(e.Timestamp) || got.Source != e.Source {
			t.Errorf("%s: stored %+v", method, got)
		}
		got.StoredAt = time.Time{}
		dumps = append(dumps, fmt.Sprintf("%+v %s", got, got.Payload))
	}
	if dumps[0] != dumps[1] {
		t.Errorf("stored events differ:\n%s\n%s", dumps[0], dumps[1])
	}
}
