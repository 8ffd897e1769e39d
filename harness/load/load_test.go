package load_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/load"
	"github.com/chronicleweaver/chronicleweaver/service/app"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

var env *devenv.Env

// TestMain runs the tests against the devenv's PostgreSQL and Redis, then
// checks that they left no goroutine behind.
func TestMain(m *testing.M) {
	code := devenv.RunTests(m, &env)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// service is one in-process service on its own database and Redis prefix.
type service struct {
	url, dbURL string
}

func startService(t *testing.T, mutate func(*config.Config)) service {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = env.NewDatabase(t)
	cfg.RedisURL = env.Redis.URL()
	cfg.StreamPrefix = env.NewPrefix(t)
	cfg.InstanceID = "load-test"
	cfg.LogLevel = "warn"
	if mutate != nil {
		mutate(&cfg)
	}
	m := &app.Main{Config: cfg, Log: app.NewLogger(testWriter{t}, cfg.LogLevel), Listen: "127.0.0.1:0"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("close service: %v", err)
		}
	})
	return service{url: m.URL(), dbURL: cfg.DatabaseURL}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func newSource(t *testing.T, cfg gen.Config) *gen.Source {
	t.Helper()
	s, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRecorder(t *testing.T) *history.Recorder {
	t.Helper()
	rec, err := history.NewRecorder("")
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// checkPaired fails unless every invocation has exactly one completion,
// recorded after it, and no completion is orphaned.
func checkPaired(t *testing.T, ops []history.Op) (invokes int) {
	t.Helper()
	inv := map[int64]int{}
	done := map[int64]int{}
	for _, op := range ops {
		if op.Type == history.Invoke {
			inv[op.Req]++
			continue
		}
		if inv[op.Req] != 1 {
			t.Fatalf("completion %+v without an earlier invocation", op)
		}
		done[op.Req]++
	}
	for req, n := range inv {
		if n != 1 || done[req] != 1 {
			t.Fatalf("op %d: %d invocations, %d completions", req, n, done[req])
		}
	}
	return len(inv)
}

// verify drains the service, reads everything back and checks the run.
func verify(t *testing.T, svc service, cfg gen.Config, rec *history.Recorder, before checker.Stats, auditBefore checker.Audit, sum load.Summary) checker.Result {
	t.Helper()
	ctx := testContext(t, time.Minute)
	c := client.New(svc.url, "")
	after, took, err := c.WaitDrained(ctx)
	if err != nil {
		t.Fatal(err)
	}
	auditAfter, err := c.AuditSummary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := client.StoredKeysDB(ctx, svc.dbURL, cfg.EventIDPrefix())
	if err != nil {
		t.Fatal(err)
	}
	viaAPI, err := c.StoredKeysAPI(ctx, cfg.EventIDPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(viaAPI) != fmt.Sprint(stored) {
		t.Fatalf("GET /events shows %d keys, the database %d", len(viaAPI), len(stored))
	}
	lat, err := client.CommitLatencies(ctx, svc.dbURL, cfg.EventIDPrefix(), time.Time{}, time.Time{})
	if err != nil || len(lat) != len(stored) {
		t.Fatalf("%d commit latencies for %d stored keys: %v", len(lat), len(stored), err)
	}
	for _, l := range lat {
		if l < 0 || l > 60 {
			t.Fatalf("commit latency %v s", l)
		}
	}

	ops := rec.Ops()
	n := checkPaired(t, ops)
	if int64(n) != sum.Requests || sum.OK+sum.Fail+sum.Info != sum.Requests {
		t.Fatalf("history has %d requests, summary %+v", n, sum)
	}
	res := checker.Check(ops, checker.Readback{
		Stored: stored, Before: before, After: after,
		AuditBefore: &auditBefore, AuditAfter: &auditAfter, Drained: true,
	})
	if !res.Valid {
		t.Fatalf("checker: %+v", res)
	}
	if int64(res.Requests.OK) != sum.OK || res.AcknowledgedCopies != sum.EventsAcked {
		t.Fatalf("checker counts %d ok requests (%d copies), summary %+v", res.Requests.OK, res.AcknowledgedCopies, sum)
	}
	// Nothing failed here, so the service received exactly the acknowledged copies.
	if d := after.Sub(before); d.Received != sum.EventsAcked || sum.OK != sum.Requests {
		t.Fatalf("service received %d copies, %d acknowledged; summary %+v", d.Received, sum.EventsAcked, sum)
	}
	t.Logf("%d requests (%d ok), %d copies, %d keys stored, drained in %s",
		sum.Requests, sum.OK, sum.EventsAcked, res.Stored, took.Round(time.Millisecond))
	return res
}

func readBefore(t *testing.T, svc service) (checker.Stats, checker.Audit) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	c := client.New(svc.url, "")
	if _, err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.AuditSummary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

func TestOpenModel(t *testing.T) {
	t.Parallel()
	svc := startService(t, nil)
	before, auditBefore := readBefore(t, svc)
	gcfg := gen.Config{Seed: 1, RunID: "open1", DuplicateRatio: 0.3, Topics: 4, EventsPerRequest: 10, PayloadBytes: 200, Disorder: 10 * time.Millisecond}
	rec := newRecorder(t)
	sum, err := load.Run(testContext(t, time.Minute), load.Config{
		Targets: []string{svc.url},
		Model:   load.Model{Kind: load.Open, Rate: 200, Duration: 2 * time.Second},
		Source:  newSource(t, gcfg),
		History: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 200/s for 2 s: the schedule has 400 slots.
	if sum.Requests < 390 || sum.Requests > 402 {
		t.Fatalf("%d requests at 200/s for 2s", sum.Requests)
	}
	t.Logf("max send lag %s, run took %s", sum.MaxSendLag, sum.End.Sub(sum.Start).Round(time.Millisecond))
	// The generator's own measures: one send lag and one latency from the
	// actual send per request, the largest lag is MaxSendLag, and the
	// process's CPU during the run is counted.
	if int64(len(sum.SendLags)) != sum.Requests || int64(len(sum.FromSend)) != sum.Requests {
		t.Errorf("%d send lags and %d latencies from send for %d requests", len(sum.SendLags), len(sum.FromSend), sum.Requests)
	}
	if len(sum.SendLags) > 0 && slices.Max(sum.SendLags) != sum.MaxSendLag {
		t.Errorf("largest send lag %s, MaxSendLag %s", slices.Max(sum.SendLags), sum.MaxSendLag)
	}
	for _, d := range sum.FromSend {
		if d <= 0 {
			t.Fatalf("a latency from send of %s", d)
		}
	}
	if sum.CPU <= 0 || sum.CPU > 4*sum.End.Sub(sum.Start) {
		t.Errorf("generator CPU %s for a run of %s", sum.CPU, sum.End.Sub(sum.Start))
	}
	verify(t, svc, gcfg, rec, before, auditBefore, sum)
}

func TestClosedModel(t *testing.T) {
	t.Parallel()
	svc := startService(t, nil)
	before, auditBefore := readBefore(t, svc)
	gcfg := gen.Config{Seed: 2, RunID: "closed1", DuplicateRatio: 0.3, Topics: 3, EventsPerRequest: 20}
	rec := newRecorder(t)
	const users, think = 4, 20 * time.Millisecond
	sum, err := load.Run(testContext(t, time.Minute), load.Config{
		Targets: []string{svc.url},
		Model:   load.Model{Kind: load.Closed, Users: users, Think: think, Duration: 2 * time.Second},
		Source:  newSource(t, gcfg),
		History: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	verify(t, svc, gcfg, rec, before, auditBefore, sum)

	// At most users requests are outstanding at any moment, and each user
	// thinks between requests: at most users * 2s/think requests.
	ops := rec.Ops()
	if conc := maxConcurrency(ops); conc > users {
		t.Fatalf("%d requests outstanding at once with %d users", conc, users)
	}
	if sum.Requests > users*int64(2*time.Second/think)+users || sum.Requests < 20 {
		t.Fatalf("%d requests by %d users thinking %s for 2s", sum.Requests, users, think)
	}
	// Latency excludes the think time: a local publish is faster than it.
	var fastest time.Duration = time.Hour
	for _, op := range ops {
		if op.Type != history.Invoke {
			fastest = min(fastest, op.Latency)
		}
	}
	if fastest >= think {
		t.Fatalf("fastest latency %s includes the think time %s", fastest, think)
	}
}

// maxConcurrency is the largest number of requests between invocation and
// completion at one instant.
func maxConcurrency(ops []history.Op) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, p := range history.Pairs(ops, history.FPublish) {
		edges = append(edges, edge{p.Invoke.Time, +1}, edge{p.Completion.Time, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // an end before a start at the same instant
	})
	cur, most := 0, 0
	for _, e := range edges {
		cur += e.delta
		most = max(most, cur)
	}
	return most
}

func TestSourceExhausted(t *testing.T) {
	t.Parallel()
	svc := startService(t, nil)
	before, auditBefore := readBefore(t, svc)
	gcfg := gen.Config{Seed: 3, RunID: "bounded1", Events: 1005, DuplicateRatio: 0.5, Topics: 2, EventsPerRequest: 10}
	rec := newRecorder(t)
	sum, err := load.Run(testContext(t, time.Minute), load.Config{
		Targets: []string{svc.url},
		Model:   load.Model{Kind: load.Closed, Users: 4},
		Source:  newSource(t, gcfg),
		History: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests != 101 || sum.EventsAttempted != 1005 {
		t.Fatalf("summary %+v, want 101 requests of 1005 copies", sum)
	}
	res := verify(t, svc, gcfg, rec, before, auditBefore, sum)
	if res.Stored != 1005-gcfg.Duplicates() {
		t.Fatalf("%d keys stored, want %d", res.Stored, 1005-gcfg.Duplicates())
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	svc := startService(t, nil)
	ctx, cancel := context.WithCancel(testContext(t, time.Minute))
	defer cancel()
	rec := newRecorder(t)
	var calls atomic.Int64
	sum, err := load.Run(ctx, load.Config{
		Targets: []string{svc.url},
		Model:   load.Model{Kind: load.Closed, Users: 2, Think: 5 * time.Millisecond}, // no Duration, unbounded source
		Source:  newSource(t, gen.Config{Seed: 4, RunID: "cancel1", Topics: 1, EventsPerRequest: 5}),
		History: rec,
		Progress: func(p load.Progress) {
			if calls.Add(1) == 1 {
				if p.Sent == 0 || p.Elapsed < 500*time.Millisecond {
					t.Errorf("first progress %+v", p)
				}
				cancel()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := checkPaired(t, rec.Ops()); int64(n) != sum.Requests || sum.Requests == 0 {
		t.Fatalf("history has %d requests, summary %+v", n, sum)
	}
	if calls.Load() < 2 {
		t.Fatalf("progress called %d times (a tick and the end)", calls.Load())
	}
}

// fakeTarget answers by the op id: op%7 picks the answer.
type fakeTarget struct {
	mu      sync.Mutex
	answers map[int64]string
	bad     []string
	hits    atomic.Int64
}

var fakeAnswers = []struct {
	name string
	want history.Type
}{
	{"ok", history.OK}, {"422", history.Fail}, {"503-rejected", history.Fail}, {"503-unknown", history.Info},
	{"500", history.Info}, {"hang", history.Info}, {"reset", history.Info},
}

func (f *fakeTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	id, err := strconv.ParseInt(r.URL.Query().Get("op"), 10, 64)
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	switch {
	case err != nil:
		f.bad = append(f.bad, "no op id in "+r.URL.String())
	case r.Method != http.MethodPost || r.URL.Path != "/publish":
		f.bad = append(f.bad, r.Method+" "+r.URL.Path)
	case r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer tok":
		f.bad = append(f.bad, fmt.Sprintf("headers %v", r.Header))
	case !bytes.HasPrefix(body, []byte(`{"events":[`)):
		f.bad = append(f.bad, "body "+string(body))
	}
	answer := fakeAnswers[id%int64(len(fakeAnswers))].name
	f.answers[id] = answer
	f.mu.Unlock()
	switch answer {
	case "ok":
		w.Write([]byte(`{"status":"success"}`))
	case "422":
		w.WriteHeader(422)
		w.Write([]byte(`{"detail":"bad timestamp"}`))
	case "503-rejected":
		w.Header().Set(client.OutcomeHeader, "rejected")
		w.WriteHeader(503)
	case "503-unknown":
		w.Header().Set(client.OutcomeHeader, "unknown")
		w.WriteHeader(503)
	case "500":
		w.WriteHeader(500)
	case "hang":
		<-r.Context().Done()
	case "reset":
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}
}

// TestOutcomes checks classification and matching of results to
// invocations across two targets, without a service.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	f := &fakeTarget{answers: map[int64]string{}}
	a, b := httptest.NewServer(f), httptest.NewServer(f)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	rec := newRecorder(t)
	sum, err := load.Run(testContext(t, time.Minute), load.Config{
		Targets: []string{a.URL, b.URL + "/"},
		Token:   "tok",
		Model:   load.Model{Kind: load.Open, Rate: 100, Duration: 700 * time.Millisecond, Timeout: 300 * time.Millisecond},
		Source:  newSource(t, gen.Config{Seed: 5, RunID: "fake", Topics: 1, EventsPerRequest: 3}),
		History: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bad) > 0 {
		t.Fatalf("bad requests: %v", f.bad)
	}
	ops := rec.Ops()
	checkPaired(t, ops)
	perTarget := map[string]int{}
	want := map[history.Type]int64{}
	for _, p := range history.Pairs(ops, history.FPublish) {
		perTarget[p.Invoke.Value]++
		answer, ok := f.answers[p.Invoke.Req]
		if !ok {
			t.Fatalf("op %d never reached a target", p.Invoke.Req)
		}
		wantType := fakeAnswers[p.Invoke.Req%int64(len(fakeAnswers))].want
		want[wantType]++
		if got := p.Completion.Type; got != wantType {
			t.Errorf("op %d answered %s: recorded %s (%+v), want %s", p.Invoke.Req, answer, got, p.Completion, wantType)
		}
		if answer == "422" && !strings.Contains(p.Completion.Error, "bad timestamp") {
			t.Errorf("422 completion error %q lacks the answer's body", p.Completion.Error)
		}
		if answer == "hang" && p.Completion.Latency < 300*time.Millisecond {
			t.Errorf("timed-out op completed after %s", p.Completion.Latency)
		}
	}
	if len(perTarget) != 2 || perTarget[a.URL] < 30 || perTarget[b.URL] < 30 {
		t.Fatalf("requests per target %v", perTarget)
	}
	if sum.OK != want[history.OK] || sum.Fail != want[history.Fail] || sum.Info != want[history.Info] || sum.Requests != f.hits.Load() {
		t.Fatalf("summary %+v, want %v, %d hits", sum, want, f.hits.Load())
	}
}

// TestOpenModelSlowTarget: a target that takes 400 ms per answer still
// gets requests on schedule (no coordinated omission): the open model adds
// workers instead of waiting.
func TestOpenModelSlowTarget(t *testing.T) {
	t.Parallel()
	var inFlight, most atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-time.After(400 * time.Millisecond): // the slowness under test, not synchronisation
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	rec := newRecorder(t)
	sum, err := load.Run(testContext(t, time.Minute), load.Config{
		Targets: []string{slow.URL},
		Model:   load.Model{Kind: load.Open, Rate: 50, Duration: time.Second},
		Source:  newSource(t, gen.Config{Seed: 6, RunID: "slow", Topics: 1, EventsPerRequest: 1}),
		History: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests < 48 || sum.Requests > 51 || sum.OK != sum.Requests {
		t.Fatalf("summary %+v: want 50 ok requests at 50/s for 1s against a slow target", sum)
	}
	if most.Load() < 15 {
		t.Fatalf("at most %d requests in flight: the rate followed the answers", most.Load())
	}
	var invs []time.Time
	for _, p := range history.Pairs(rec.Ops(), history.FPublish) {
		invs = append(invs, p.Invoke.Time)
		if p.Completion.Latency < 400*time.Millisecond {
			t.Fatalf("latency %s below the target's 400ms", p.Completion.Latency)
		}
	}
	slices.SortFunc(invs, time.Time.Compare)
	for i := 1; i < len(invs); i++ {
		if gap := invs[i].Sub(invs[i-1]); gap > 100*time.Millisecond {
			t.Fatalf("invocations %d and %d are %s apart at 50/s", i-1, i, gap)
		}
	}
}

func TestLinearRamp(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	rec := newRecorder(t)
	sum, err := load.Run(testContext(t, time.Minute), load.Config{
		Targets: []string{srv.URL},
		Model:   load.Model{Kind: load.Open, Rate: 20, RampTo: 180, Duration: time.Second},
		Source:  newSource(t, gen.Config{Seed: 7, RunID: "ramp", Topics: 1, EventsPerRequest: 1}),
		History: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The mean rate of a ramp 20 -> 180 over 1 s is 100/s; the second half
	// sends more than the first.
	if sum.Requests < 95 || sum.Requests > 106 {
		t.Fatalf("%d requests on a 20->180/s ramp over 1s", sum.Requests)
	}
	var first, second int
	mid := sum.Start.Add(500 * time.Millisecond)
	for _, p := range history.Pairs(rec.Ops(), history.FPublish) {
		if p.Invoke.Time.Before(mid) {
			first++
		} else {
			second++
		}
	}
	if second < 2*first {
		t.Fatalf("%d requests in the first half, %d in the second", first, second)
	}
}

func TestDeadTarget(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	rec := newRecorder(t)
	sum, err := load.Run(testContext(t, time.Minute), load.Config{
		Targets: []string{dead},
		Model:   load.Model{Kind: load.Open, Rate: 100, Duration: 300 * time.Millisecond},
		Source:  newSource(t, gen.Config{Seed: 8, RunID: "dead", Topics: 1, EventsPerRequest: 2}),
		History: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests < 25 || sum.Fail != sum.Requests || sum.EventsAcked != 0 {
		t.Fatalf("summary %+v: every request to a refusing port must fail", sum)
	}
	if n := checkPaired(t, rec.Ops()); int64(n) != sum.Requests {
		t.Fatalf("%d ops in the history, %d requests", n, sum.Requests)
	}
	res := checker.Check(rec.Ops(), checker.Readback{Stored: map[history.Key]int{}, Drained: true})
	if !res.Valid || res.FailedCopies != sum.EventsAttempted {
		t.Fatalf("checker on refused requests: %+v", res)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	src := newSource(t, gen.Config{RunID: "cfg", Topics: 1, EventsPerRequest: 1})
	rec := newRecorder(t)
	ok := load.Config{Targets: []string{"http://127.0.0.1:1"}, Source: src, History: rec,
		Model: load.Model{Kind: load.Open, Rate: 10, Duration: time.Second}}
	for _, tc := range []struct {
		field  string
		mutate func(*load.Config)
	}{
		{"Targets", func(c *load.Config) { c.Targets = nil }},
		{"Targets", func(c *load.Config) { c.Targets = []string{"127.0.0.1:8080"} }},
		{"Targets", func(c *load.Config) { c.Targets = []string{"http://h/x?y=1"} }},
		{"Source", func(c *load.Config) { c.Source = nil }},
		{"History", func(c *load.Config) { c.History = nil }},
		{"Model.Kind", func(c *load.Config) { c.Model.Kind = "poisson" }},
		{"Model.Rate", func(c *load.Config) { c.Model.Rate = 0 }},
		{"Model.RampTo", func(c *load.Config) { c.Model.RampTo = -1 }},
		{"Model.Duration", func(c *load.Config) { c.Model.RampTo, c.Model.Duration = 10, 0 }},
		{"Model.Users", func(c *load.Config) { c.Model = load.Model{Kind: load.Closed} }},
		{"Model.Users", func(c *load.Config) { c.Model.Users = 3 }},
		{"Model.Think", func(c *load.Config) { c.Model = load.Model{Kind: load.Closed, Users: 1, Think: -1} }},
		{"Model.Rate", func(c *load.Config) { c.Model = load.Model{Kind: load.Closed, Users: 1, Rate: 5} }},
		{"Model.Timeout", func(c *load.Config) { c.Model.Timeout = -time.Second }},
	} {
		cfg := ok
		tc.mutate(&cfg)
		if _, err := load.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v", tc.field, err)
		}
	}
	if len(rec.Ops()) != 0 {
		t.Fatal("an invalid config sent requests")
	}
}

// TestRetriesWithKey: with IdempotencyHeader, every request carries a
// fresh key, and an attempt whose outcome is unknown (here: the first of
// each request, its connection reset after the target read it) is sent
// again with the same key and body, each attempt recorded. The target sees
// exactly the attempts the history holds: the HTTP transport resends
// nothing on its own.
func TestRetriesWithKey(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string][][]byte{} // key -> bodies of its attempts
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		key := r.Header.Get("Idempotency-Key")
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[key] = append(seen[key], body)
		n := len(seen[key])
		mu.Unlock()
		if n == 1 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		w.Write([]byte(`{"status":"success"}`))
	}))
	t.Cleanup(srv.Close)
	rec := newRecorder(t)
	sum, err := load.Run(testContext(t, time.Minute), load.Config{
		Targets:           []string{srv.URL},
		Model:             load.Model{Kind: load.Open, Rate: 50, Duration: 400 * time.Millisecond, Timeout: time.Second},
		Source:            newSource(t, gen.Config{Seed: 9, RunID: "retry", Topics: 1, EventsPerRequest: 2}),
		History:           rec,
		IdempotencyHeader: "Idempotency-Key",
	})
	if err != nil {
		t.Fatal(err)
	}
	ops := rec.Ops()
	checkPaired(t, ops)
	reqs := history.Requests(ops)
	if len(reqs) < 10 {
		t.Fatalf("%d requests", len(reqs))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, q := range reqs {
		if q.IdemKey == "" || len(q.Attempts) != 2 || q.Outcome() != history.OK {
			t.Fatalf("request %+v: want a key and 2 attempts, the second acknowledged", q)
		}
		if a := q.Attempts[0].Outcome(); a != history.Info {
			t.Errorf("first attempt of %s: %s, want info (reset)", q.IdemKey, a)
		}
		bodies := seen[q.IdemKey]
		if len(bodies) != 2 || !bytes.Equal(bodies[0], bodies[1]) {
			t.Errorf("key %s: the target saw %d attempts (want 2, same body)", q.IdemKey, len(bodies))
		}
	}
	if int(hits.Load()) != 2*len(reqs) || sum.Requests != hits.Load() || sum.OK != int64(len(reqs)) || sum.Info != int64(len(reqs)) {
		t.Fatalf("%d hits for %d requests; summary %+v", hits.Load(), len(reqs), sum)
	}
}
