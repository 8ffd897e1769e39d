package gen_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/service/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustNew(tb testing.TB, cfg gen.Config) *gen.Source {
	tb.Helper()
	s, err := gen.New(cfg)
	if err != nil {
		tb.Fatalf("gen.New(%+v): %v", cfg, err)
	}
	return s
}

func baseConfig() gen.Config {
	return gen.Config{Seed: 1, RunID: "run1", Events: 5000, DuplicateRatio: 0.3, Topics: 4, EventsPerRequest: 10}
}

// copies counts every copy and the duplicates (copies whose key came
// earlier) of reqs.
func copies(reqs []gen.Request) (total, dups int) {
	seen := map[history.Key]bool{}
	for _, r := range reqs {
		for _, k := range r.Keys {
			total++
			if seen[k] {
				dups++
			}
			seen[k] = true
		}
	}
	return total, dups
}

func TestExactDuplicates(t *testing.T) {
	t.Parallel()
	for _, ratio := range []float64{0, 0.3, 0.9} {
		for _, seed := range []int64{1, 2, 3, 42, -7} {
			for _, events := range []int{1000, 2500, 7777} {
				for _, epr := range []int{1, 7, 100} {
					name := fmt.Sprintf("ratio%v/seed%d/events%d/epr%d", ratio, seed, events, epr)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						cfg := gen.Config{Seed: seed, RunID: "r", Events: events, DuplicateRatio: ratio, Topics: 3, EventsPerRequest: epr}
						reqs := mustNew(t, cfg).All()
						total, dups := copies(reqs)
						if total != events {
							t.Fatalf("%d copies, want %d", total, events)
						}
						// Blocks of 1000 and a remainder; no capping occurs here.
						want := 0
						for start := 0; start < events; start += gen.BlockSize {
							size := min(gen.BlockSize, events-start)
							want += int(float64(size)*ratio + 0.5)
						}
						if dups != want || cfg.Duplicates() != want {
							t.Fatalf("%d duplicates, Config.Duplicates %d, want %d", dups, cfg.Duplicates(), want)
						}
					})
				}
			}
		}
	}
}

func TestExactPerBlockUnbounded(t *testing.T) {
	t.Parallel()
	s := mustNew(t, gen.Config{Seed: 9, RunID: "u", DuplicateRatio: 0.37, Topics: 2, EventsPerRequest: 8})
	if got := s.Config().Duplicates(); got != -1 {
		t.Fatalf("Duplicates of an unbounded config = %d, want -1", got)
	}
	seen := map[history.Key]bool{}
	pos, dupsInBlock := 0, 0
	for pos < 5*gen.BlockSize {
		r, ok := s.Next()
		if !ok {
			t.Fatal("unbounded source ended")
		}
		for _, k := range r.Keys {
			if seen[k] {
				dupsInBlock++
			}
			seen[k] = true
			pos++
			if pos%gen.BlockSize == 0 {
				if dupsInBlock != 370 {
					t.Fatalf("block ending at %d has %d duplicates, want 370", pos, dupsInBlock)
				}
				dupsInBlock = 0
			}
		}
	}
}

func TestFirstCopyNeverDuplicate(t *testing.T) {
	t.Parallel()
	// A ratio rounding to the whole block: the first block holds 999.
	cfg := gen.Config{Seed: 3, RunID: "f", Events: 2000, DuplicateRatio: 0.9999, Topics: 1, EventsPerRequest: 50}
	reqs := mustNew(t, cfg).All()
	total, dups := copies(reqs)
	if total != 2000 || dups != 1999 || cfg.Duplicates() != 1999 {
		t.Fatalf("total %d, dups %d, Duplicates() %d; want 2000, 1999, 1999", total, dups, cfg.Duplicates())
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.PayloadBytes, cfg.Disorder = 700, 50*time.Millisecond
	a, b := mustNew(t, cfg).All(), mustNew(t, cfg).All()
	if len(a) != len(b) {
		t.Fatalf("%d vs %d requests", len(a), len(b))
	}
	for i := range a {
		if a[i].Seq != int64(i) || b[i].Seq != int64(i) || !bytes.Equal(a[i].Body, b[i].Body) {
			t.Fatalf("request %d differs between two sources of one config", i)
		}
	}
	cfg.Seed++
	c := mustNew(t, cfg).All()
	if bytes.Equal(a[1].Body, c[1].Body) {
		t.Fatal("another seed gave the same body")
	}
}

type wireEvent struct {
	EventID   string `json:"event_id"`
	Topic     string `json:"topic"`
	Source    string `json:"source"`
	Timestamp string `json:"timestamp"`
	Payload   struct {
		Message   string `json:"message"`
		Timestamp string `json:"timestamp"`
		Seq       int64  `json:"seq"`
	} `json:"payload"`
}

func TestBodiesAreValid(t *testing.T) {
	t.Parallel()
	for _, cfg := range []gen.Config{
		baseConfig(),
		{Seed: 5, RunID: "big.run_1:x-y", Events: 300, DuplicateRatio: 0.5, Topics: 10, EventsPerRequest: 100, PayloadBytes: 4000, Disorder: time.Second},
		{Seed: 6, RunID: "max", Events: 20, Topics: 1, EventsPerRequest: 20, PayloadBytes: 64<<10 - 1024},
		{Seed: 7, RunID: "small", Events: 5, Topics: 1, EventsPerRequest: 1, PayloadBytes: 1},
	} {
		t.Run(cfg.RunID, func(t *testing.T) {
			t.Parallel()
			var pos int64
			for _, r := range mustNew(t, cfg).All() {
				evs, err := event.DecodeRequest(r.Body, event.DefaultLimits())
				if err != nil {
					t.Fatalf("request %d rejected by the service's validator: %v", r.Seq, err)
				}
				var wire struct{ Events []wireEvent }
				if err := json.Unmarshal(r.Body, &wire); err != nil {
					t.Fatal(err)
				}
				if len(evs) != len(r.Keys) || len(wire.Events) != len(r.Keys) {
					t.Fatalf("request %d: %d events, %d keys", r.Seq, len(evs), len(r.Keys))
				}
				for i, e := range wire.Events {
					k := r.Keys[i]
					if e.EventID != k.ID || e.Topic != k.Topic || e.Source != gen.EventSource {
						t.Fatalf("event %+v does not match key %+v", e, k)
					}
					if !strings.HasPrefix(e.EventID, cfg.EventIDPrefix()) || !strings.HasPrefix(e.Topic, cfg.TopicPrefix()) {
						t.Fatalf("key %+v outside the run's namespace", k)
					}
					ts, err := time.Parse(time.RFC3339Nano, e.Timestamp)
					if err != nil || len(e.Timestamp) != len("2006-01-02T15:04:05.000000Z") || !strings.HasSuffix(e.Timestamp, "Z") {
						t.Fatalf("timestamp %q is not RFC 3339 UTC with microseconds: %v", e.Timestamp, err)
					}
					if e.Payload.Timestamp != e.Timestamp || e.Payload.Seq != pos || e.Payload.Message == "" {
						t.Fatalf("payload %+v of copy %d", e.Payload, pos)
					}
					_ = ts
					if cfg.PayloadBytes > 200 {
						if n := len(evs[i].Payload); n < cfg.PayloadBytes-2 || n > cfg.PayloadBytes+2 {
							t.Fatalf("payload of %d bytes, want about %d", n, cfg.PayloadBytes)
						}
					}
					pos++
				}
			}
		})
	}
}

func TestTimestampsDisorder(t *testing.T) {
	t.Parallel()
	cfg := gen.Config{Seed: 11, RunID: "ts", Events: 2000, Topics: 1, EventsPerRequest: 100, Disorder: 20 * time.Millisecond}
	var base time.Time
	var maxBack time.Duration
	disordered := false
	var prev time.Time
	for _, r := range mustNew(t, cfg).All() {
		var wire struct{ Events []wireEvent }
		if err := json.Unmarshal(r.Body, &wire); err != nil {
			t.Fatal(err)
		}
		for _, e := range wire.Events {
			ts, _ := time.Parse(time.RFC3339Nano, e.Timestamp)
			n := e.Payload.Seq
			if n == 0 {
				base = ts // within Disorder of the true base
			}
			ideal := base.Add(time.Duration(n) * time.Millisecond)
			if back := ideal.Sub(ts); back > maxBack {
				maxBack = back
			}
			if ts.Before(prev) {
				disordered = true
			}
			prev = ts
		}
	}
	if !disordered {
		t.Fatal("no timestamp is out of order with Disorder 20ms")
	}
	if maxBack >= 2*cfg.Disorder {
		t.Fatalf("a timestamp is %s before its slot, Disorder is %s", maxBack, cfg.Disorder)
	}
	// Without disorder timestamps are exactly base + n ms.
	cfg.Disorder = 0
	r := mustNew(t, cfg).All()[3]
	var wire struct{ Events []wireEvent }
	_ = json.Unmarshal(r.Body, &wire)
	t0, _ := time.Parse(time.RFC3339Nano, wire.Events[0].Timestamp)
	t1, _ := time.Parse(time.RFC3339Nano, wire.Events[1].Timestamp)
	if t1.Sub(t0) != time.Millisecond {
		t.Fatalf("consecutive copies %s apart without disorder", t1.Sub(t0))
	}
}

// TestDuplicateOrigins checks that duplicates come from the same request,
// from the last RecentRequests requests, and from older ones.
func TestDuplicateOrigins(t *testing.T) {
	t.Parallel()
	cfg := gen.Config{Seed: 21, RunID: "o", Events: 20000, DuplicateRatio: 0.3, Topics: 5, EventsPerRequest: 20}
	lastSeen := map[history.Key]int64{} // request of the latest earlier copy
	var inReq, recent, older int
	for _, r := range mustNew(t, cfg).All() {
		here := map[history.Key]bool{}
		for _, k := range r.Keys {
			switch last, ok := lastSeen[k]; {
			case here[k]:
				inReq++
			case ok && r.Seq-last <= gen.RecentRequests:
				recent++
			case ok:
				older++
			}
			here[k] = true
		}
		for k := range here {
			lastSeen[k] = r.Seq
		}
	}
	total := inReq + recent + older
	if total != cfg.Duplicates() {
		t.Fatalf("%d duplicates, want %d", total, cfg.Duplicates())
	}
	// Shares 0.2 / 0.5 / 0.3 by default; an "any earlier" pick may land in
	// a recent request, so only lower bounds are firm.
	share := func(n int) float64 { return float64(n) / float64(total) }
	if share(inReq) < 0.15 || share(recent) < 0.4 || share(older) < 0.1 {
		t.Fatalf("origins in-request %d, recent %d, older %d of %d", inReq, recent, older, total)
	}

}

func TestInRequestOnly(t *testing.T) {
	t.Parallel()
	cfg := gen.Config{Seed: 4, RunID: "i", Events: 3000, DuplicateRatio: 0.4, Topics: 2, EventsPerRequest: 30,
		InRequestShare: 1, RecentShare: -1}
	seen := map[history.Key]bool{}
	for _, r := range mustNew(t, cfg).All() {
		here := map[history.Key]bool{}
		for i, k := range r.Keys {
			if seen[k] && !here[k] && i > 0 {
				t.Fatalf("request %d copy %d repeats a key of an earlier request with InRequestShare 1", r.Seq, i)
			}
			here[k] = true
		}
		for k := range here {
			seen[k] = true
		}
	}
}

func TestConcurrentNext(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.Events, cfg.PayloadBytes, cfg.SharedIDs = 20000, 300, 0.2
	want := mustNew(t, cfg).All()
	s := mustNew(t, cfg)
	got := make([][]gen.Request, 8)
	var wg sync.WaitGroup
	for g := range got {
		wg.Go(func() {
			for {
				r, ok := s.Next()
				if !ok {
					return
				}
				got[g] = append(got[g], r)
			}
		})
	}
	wg.Wait()
	bySeq := map[int64]gen.Request{}
	for _, rs := range got {
		for _, r := range rs {
			if _, dup := bySeq[r.Seq]; dup {
				t.Fatalf("Seq %d returned twice", r.Seq)
			}
			bySeq[r.Seq] = r
		}
	}
	if len(bySeq) != len(want) {
		t.Fatalf("%d requests from 8 goroutines, %d sequentially", len(bySeq), len(want))
	}
	for _, w := range want {
		if g, ok := bySeq[w.Seq]; !ok || !bytes.Equal(g.Body, w.Body) {
			t.Fatalf("request %d differs from the sequential run", w.Seq)
		}
	}
	if _, ok := s.Next(); ok {
		t.Fatal("Next after exhaustion returned a request")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		field  string
		mutate func(*gen.Config)
	}{
		{"RunID", func(c *gen.Config) { c.RunID = "" }},
		{"RunID", func(c *gen.Config) { c.RunID = "a b" }},
		{"RunID", func(c *gen.Config) { c.RunID = strings.Repeat("x", 201) }},
		{"Events", func(c *gen.Config) { c.Events = -1 }},
		{"DuplicateRatio", func(c *gen.Config) { c.DuplicateRatio = 1 }},
		{"DuplicateRatio", func(c *gen.Config) { c.DuplicateRatio = -0.1 }},
		{"Topics", func(c *gen.Config) { c.Topics = 0 }},
		{"EventsPerRequest", func(c *gen.Config) { c.EventsPerRequest = 0 }},
		{"EventsPerRequest", func(c *gen.Config) { c.EventsPerRequest = 10001 }},
		{"EventsPerRequest", func(c *gen.Config) { c.EventsPerRequest, c.PayloadBytes = 10000, 60000 }},
		{"PayloadBytes", func(c *gen.Config) { c.PayloadBytes = -1 }},
		{"PayloadBytes", func(c *gen.Config) { c.PayloadBytes = 64 << 10 }},
		{"Disorder", func(c *gen.Config) { c.Disorder = -time.Second }},
		{"InRequestShare", func(c *gen.Config) { c.InRequestShare = 1.5 }},
		{"RecentShare", func(c *gen.Config) { c.InRequestShare, c.RecentShare = 0.6, 0.6 }},
		{"SharedIDs", func(c *gen.Config) { c.SharedIDs = 1 }},
		{"SharedIDs", func(c *gen.Config) { c.SharedIDs = -0.1 }},
		{"SharedIDs", func(c *gen.Config) { c.SharedIDs, c.Topics = 0.1, 1 }},
	} {
		cfg := baseConfig()
		tc.mutate(&cfg)
		_, err := gen.New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("config %+v: error %v, want one naming %s", cfg, err, tc.field)
		}
	}
}

// sharing counts, over reqs, the distinct keys, the distinct event ids and
// the event ids used under more than one topic.
func sharing(reqs []gen.Request) (keys, ids, multi int) {
	topics := map[string]map[string]bool{} // event id -> topics
	seen := map[history.Key]bool{}
	for _, r := range reqs {
		for _, k := range r.Keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			if topics[k.ID] == nil {
				topics[k.ID] = map[string]bool{}
			}
			topics[k.ID][k.Topic] = true
		}
	}
	for _, ts := range topics {
		if len(ts) > 1 {
			multi++
		}
	}
	return len(seen), len(topics), multi
}

// dupPositions marks, copy by copy, which copies repeat an earlier key.
func dupPositions(reqs []gen.Request) string {
	var b strings.Builder
	seen := map[history.Key]bool{}
	for _, r := range reqs {
		for _, k := range r.Keys {
			if seen[k] {
				b.WriteByte('d')
			} else {
				b.WriteByte('.')
			}
			seen[k] = true
		}
	}
	return b.String()
}

// TestSharedIDs: with SharedIDs f, exactly round(1000f) of every full block
// of 1000 keys reuse an earlier key's event id under another topic; the
// keys stay distinct (the duplicate count is the planned one); the
// duplicate plan does not change; SharedIDs 0 shares nothing.
func TestSharedIDs(t *testing.T) {
	t.Parallel()
	for _, f := range []float64{0, 0.1, 0.3} {
		for _, topics := range []int{2, 3, 8} {
			for _, seed := range []int64{1, 7} {
				t.Run(fmt.Sprintf("f%v/topics%d/seed%d", f, topics, seed), func(t *testing.T) {
					t.Parallel()
					cfg := gen.Config{Seed: seed, RunID: "sh", Events: 6000, DuplicateRatio: 0.25, Topics: topics, EventsPerRequest: 13, SharedIDs: f}
					reqs := mustNew(t, cfg).All()
					total, dups := copies(reqs)
					if total != 6000 || dups != cfg.Duplicates() {
						t.Fatalf("%d copies, %d duplicates; want 6000, %d", total, dups, cfg.Duplicates())
					}
					keys, ids, multi := sharing(reqs)
					// 4500 keys: 4 full blocks of 1000 and half a block.
					reuses, d := keys-ids, int(math.Round(1000*f))
					if reuses < 4*d || reuses > 5*d {
						t.Fatalf("%d keys reuse an event id (%d keys, %d ids), want %d plus at most %d in the last, partial block",
							reuses, keys, ids, 4*d, d)
					}
					if (f > 0) != (multi > 0) {
						t.Fatalf("SharedIDs %v: %d event ids under several topics", f, multi)
					}
					// The duplicate positions are those of the source without sharing.
					plain := cfg
					plain.SharedIDs = 0
					if a, b := dupPositions(reqs), dupPositions(mustNew(t, plain).All()); a != b {
						t.Fatal("sharing changed which copies are duplicates")
					}
				})
			}
		}
	}
}

func TestAllPanicsUnbounded(t *testing.T) {
	t.Parallel()
	s := mustNew(t, gen.Config{RunID: "p", Topics: 1, EventsPerRequest: 1})
	defer func() {
		if recover() == nil {
			t.Fatal("All on an unbounded source did not panic")
		}
	}()
	s.All()
}

func BenchmarkNext(b *testing.B) {
	s := mustNew(b, gen.Config{Seed: 1, RunID: "bench", DuplicateRatio: 0.3, Topics: 8, EventsPerRequest: 100, PayloadBytes: 256})
	b.ReportAllocs()
	for b.Loop() {
		r, _ := s.Next()
		b.SetBytes(int64(len(r.Body)))
	}
}
