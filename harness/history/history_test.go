package history_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRecorderConcurrent records requests from several goroutines: every
// op is kept once with its own index, each completion carries its
// invocation's Req and latency, and the file reads back as the ops in
// memory.
func TestRecorderConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "history.jsonl")
	r, err := history.NewRecorder(path)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 50
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				at := t0.Add(time.Duration(w*each+i) * time.Millisecond)
				inv := r.InvokeAt(at, w, history.FPublish, []history.Key{{Topic: "t", ID: string(rune('a' + w))}}, "")
				typ := history.OK
				if i%3 == 0 {
					typ = history.Info
				}
				r.Complete(inv, typ, at.Add(5*time.Millisecond), 201, "", "")
			}
		}()
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ops := r.Ops()
	if len(ops) != 2*workers*each {
		t.Fatalf("%d ops, want %d", len(ops), 2*workers*each)
	}
	for i, op := range ops {
		if op.Index != int64(i) {
			t.Fatalf("op %d has index %d", i, op.Index)
		}
	}
	pairs := history.Pairs(ops, history.FPublish)
	if len(pairs) != workers*each {
		t.Fatalf("%d pairs, want %d", len(pairs), workers*each)
	}
	reqs := map[int64]bool{}
	for _, p := range pairs {
		c := p.Completion
		if c == nil || c.Req != p.Invoke.Req || c.Process != p.Invoke.Process || c.Latency != 5*time.Millisecond {
			t.Fatalf("pair %+v: completion does not match its invocation", p)
		}
		if reqs[p.Invoke.Req] {
			t.Fatalf("Req %d given twice", p.Invoke.Req)
		}
		reqs[p.Invoke.Req] = true
	}
	back, err := history.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range back { // times come back without their location
		back[i].Time = back[i].Time.UTC()
	}
	if !reflect.DeepEqual(back, ops) {
		t.Errorf("the file does not read back as the recorded ops")
	}
}

func TestPairsAndOutcome(t *testing.T) {
	t.Parallel()
	r, err := history.NewRecorder("")
	if err != nil {
		t.Fatal(err)
	}
	a := r.Invoke(0, history.FPublish, nil, "")
	f := r.Invoke(history.NemesisProcess, "kill", nil, "service-0")
	b := r.Invoke(1, history.FPublish, nil, "")
	r.Complete(f, history.OK, time.Now(), 0, "", "service-0")
	r.Complete(a, history.Fail, time.Now(), 422, "bad", "")
	pairs := history.Pairs(r.Ops(), history.FPublish)
	if len(pairs) != 2 || pairs[0].Invoke.Req != a.Req || pairs[1].Invoke.Req != b.Req {
		t.Fatalf("Pairs = %+v, want a and b in invocation order", pairs)
	}
	if pairs[0].Outcome() != history.Fail || pairs[1].Outcome() != history.Info {
		t.Errorf("outcomes %s, %s; want fail, info (no completion is unknown)", pairs[0].Outcome(), pairs[1].Outcome())
	}
	if all := history.Pairs(r.Ops(), ""); len(all) != 3 {
		t.Errorf("Pairs of every function: %d, want 3", len(all))
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close of an in-memory recorder: %v", err)
	}
	if _, err := history.Decode(strings.NewReader("{\"index\":0}\n{")); err == nil {
		t.Errorf("Decode of a cut line: no error")
	}
}
