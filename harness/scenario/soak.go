package scenario

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// The soak sampler (chronicle soak, issue 15): while a run's load and
// faults go on, every Options.SampleEvery it reads the service's RSS and
// goroutines (GET /metrics of each instance, summed), Redis's used_memory
// (INFO memory), the sizes of the events, ledger and audit tables and the
// ledger's rows (PostgreSQL, straight), and the backlog (GET /stats:
// queue_depth + pending). A reading that fails (a node down under a fault)
// is left out and counted, never fatal. After the load, the HTTP latency
// percentiles per minute come from the history. Everything lands in
// results.Scenario.Soak; results.Soak judges it.

// The tables sampled: the events, the ledger of applied entries and the
// audit tables of duplicates and dead letters (service/store/migrations).
const (
	tableEvents  = "events"
	tableLedger  = "applied_entries"
	tableDropped = "dropped"
	tableFailed  = "failed"
)

// soakTables are the tables whose sizes are sampled.
var soakTables = []string{tableEvents, tableLedger, tableDropped, tableFailed}

// maxSoakErrors bounds the distinct errors a run keeps (the count is exact).
const maxSoakErrors = 20

const (
	unitBytes, unitCount  = "bytes", "count"
	unitMS                = "ms"
	latencyWindow         = time.Minute
	faultSettle           = 10 * time.Second // after a fault's heal and recovery, still counted as its minute
	soakSampleMinInterval = time.Second
)

// newSoakSamples returns the empty series, in the order the report shows
// them; Flat marks those the verdict judges.
func newSoakSamples(every time.Duration) *results.SoakSamples {
	s := &results.SoakSamples{Every: every.Seconds()}
	for _, d := range []struct {
		name, unit string
		flat       bool
	}{
		{results.SoakRSS, unitBytes, true},
		{results.SoakGoroutines, unitCount, true},
		{results.SoakRedisMemory, unitBytes, true},
		{results.SoakLedgerRows, unitCount, true},
		{results.SoakBacklog, unitCount, false},
		{results.SoakEventsBytes, unitBytes, false},
		{results.SoakEventsIndexBytes, unitBytes, false},
		{results.SoakLedgerBytes, unitBytes, false},
		{results.SoakLedgerIndexBytes, unitBytes, false},
		{results.SoakAuditBytes, unitBytes, false},
		{results.SoakAuditIndexBytes, unitBytes, false},
	} {
		s.Series = append(s.Series, results.SoakSeries{Name: d.name, Unit: d.unit, Flat: d.flat})
	}
	return s
}

// sampler reads the environment every interval until stopped.
type sampler struct {
	every   time.Duration
	t0      time.Time
	clients []*client.Client // one per service instance
	dbURL   string
	redis   string // "" : not known (no sample)

	mu  sync.Mutex // guards out, written by the sampling goroutine, read by stop
	out *results.SoakSamples
}

// newSampler prepares a sampler of e; t0 is time 0 of every sample.
func newSampler(o Options, e env.Env, every time.Duration, t0 time.Time) (*sampler, error) {
	s := &sampler{every: max(every, soakSampleMinInterval), t0: t0, dbURL: e.DatabaseURL(), out: newSoakSamples(every)}
	for _, t := range e.Targets() {
		c, err := o.client(t, e)
		if err != nil {
			return nil, err
		}
		s.clients = append(s.clients, c)
	}
	if r, ok := e.(interface{ RedisURL() string }); ok {
		s.redis = r.RedisURL()
	}
	return s, nil
}

// run samples at once and then every interval until ctx ends.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// add records one reading of series name.
func (s *sampler) add(at float64, name string, v float64) {
	for i := range s.out.Series {
		if s.out.Series[i].Name == name {
			s.out.Series[i].Samples = append(s.out.Series[i].Samples, results.Sample{At: at, Value: v})
			return
		}
	}
}

// fail counts a reading that failed.
func (s *sampler) fail(what string, err error) {
	if errors.Is(err, context.Canceled) {
		return // stopped mid-reading: not a failure
	}
	s.out.Failed++
	if len(s.out.Errors) < maxSoakErrors {
		s.out.Errors = append(s.out.Errors, fmt.Sprintf("%s: %v", what, err))
	}
}

// sample takes one round of readings.
func (s *sampler) sample(ctx context.Context) {
	at := time.Since(s.t0).Seconds()
	r := s.read(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.Taken++
	for _, f := range r.failed {
		s.fail(f.what, f.err)
	}
	for _, v := range r.values {
		s.add(at, v.name, v.v)
	}
}

type reading struct {
	values []struct {
		name string
		v    float64
	}
	failed []struct {
		what string
		err  error
	}
}

func (r *reading) set(name string, v float64) {
	r.values = append(r.values, struct {
		name string
		v    float64
	}{name, v})
}

func (r *reading) fail(what string, err error) {
	r.failed = append(r.failed, struct {
		what string
		err  error
	}{what, err})
}

// read does one round's readings, without the lock.
func (s *sampler) read(ctx context.Context) reading {
	var r reading
	// The service: summed over the instances, only when every one answered.
	var rss, goroutines, backlog float64
	okMetrics, okStats := true, true
	for _, c := range s.clients {
		text, err := c.Metrics(ctx)
		if err == nil {
			var v float64
			var found bool
			if v, found, err = client.MetricValue(text, "process_resident_memory_bytes"); err == nil && found {
				rss += v
				if v, found, err = client.MetricValue(text, "go_goroutines"); err == nil && found {
					goroutines += v
				}
			}
			if err == nil && !found {
				err = errors.New("process_resident_memory_bytes or go_goroutines missing")
			}
		}
		if err != nil {
			okMetrics = false
			r.fail("service metrics", err)
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.Stats(sctx)
		cancel()
		if err != nil {
			okStats = false
			r.fail("service stats", err)
		} else {
			backlog += float64(st.QueueDepth + st.Pending)
		}
	}
	if okMetrics && len(s.clients) > 0 {
		r.set(results.SoakRSS, rss)
		r.set(results.SoakGoroutines, goroutines)
	}
	if okStats && len(s.clients) > 0 {
		r.set(results.SoakBacklog, backlog)
	}
	if s.redis != "" {
		if n, err := client.RedisUsedMemory(ctx, s.redis); err != nil {
			r.fail("redis used_memory", err)
		} else {
			r.set(results.SoakRedisMemory, float64(n))
		}
	}
	if s.dbURL != "" {
		sizes, rows, err := client.DBSizes(ctx, s.dbURL, soakTables, tableLedger)
		if err != nil {
			r.fail("postgres sizes", err)
		} else {
			ev, led := sizes[tableEvents], sizes[tableLedger]
			audit := client.TableSize{Total: sizes[tableDropped].Total + sizes[tableFailed].Total,
				Indexes: sizes[tableDropped].Indexes + sizes[tableFailed].Indexes}
			r.set(results.SoakEventsBytes, float64(ev.Total))
			r.set(results.SoakEventsIndexBytes, float64(ev.Indexes))
			r.set(results.SoakLedgerBytes, float64(led.Total))
			r.set(results.SoakLedgerIndexBytes, float64(led.Indexes))
			r.set(results.SoakAuditBytes, float64(audit.Total))
			r.set(results.SoakAuditIndexBytes, float64(audit.Indexes))
			r.set(results.SoakLedgerRows, float64(rows))
		}
	}
	return r
}

// samples returns what was sampled so far (the sampler must be stopped).
func (s *sampler) samples() *results.SoakSamples {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out
}

// startSampler starts sampling e every o.SampleEvery from now; the returned
// function stops it and returns the samples. With SampleEvery 0 it does
// nothing and returns nil.
func startSampler(ctx context.Context, o Options, e env.Env) (stop func() *results.SoakSamples, t0 time.Time, err error) {
	t0 = time.Now()
	if o.SampleEvery <= 0 {
		return func() *results.SoakSamples { return nil }, t0, nil
	}
	s, err := newSampler(o, e, o.SampleEvery, t0)
	if err != nil {
		return nil, t0, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(sctx)
	}()
	return func() *results.SoakSamples {
		cancel()
		<-done
		return s.samples()
	}, t0, nil
}

// latencySeries are the publish latency percentiles per minute window
// (from t0) of ops: p50 and p99 of every completion, and p99 of the
// minutes no fault touched (from its injection to its heal, recovery and
// faultSettle after), the one the verdict judges for drift. A sample sits
// at the middle of its minute; a minute without completions has none.
func latencySeries(ops []history.Op, faults []results.Fault, t0 time.Time) []results.SoakSeries {
	byMin := map[int][]float64{}
	for _, p := range history.Pairs(ops, history.FPublish) {
		c := p.Completion
		if c == nil || c.Time.Before(t0) {
			continue
		}
		l := c.Latency
		if l <= 0 {
			l = c.Time.Sub(p.Invoke.Time)
		}
		i := int(c.Time.Sub(t0) / latencyWindow)
		byMin[i] = append(byMin[i], float64(l)/float64(time.Millisecond))
	}
	touched := map[int]bool{}
	for _, f := range faults {
		if f.At.IsZero() {
			continue
		}
		end := f.At.Add(time.Duration((f.Held + max(f.ToReady, f.ToDrained)) * float64(time.Second))).Add(faultSettle)
		for i := int(f.At.Sub(t0) / latencyWindow); i <= int(end.Sub(t0)/latencyWindow); i++ {
			touched[i] = true
		}
	}
	mins := make([]int, 0, len(byMin))
	for i := range byMin {
		mins = append(mins, i)
	}
	sort.Ints(mins)
	p50 := results.SoakSeries{Name: results.SoakHTTPP50, Unit: unitMS}
	p99 := results.SoakSeries{Name: results.SoakHTTPP99, Unit: unitMS}
	quiet := results.SoakSeries{Name: results.SoakHTTPP99Quiet, Unit: unitMS, Flat: true}
	for _, i := range mins {
		pc := results.PercentilesOf(byMin[i])
		at := (time.Duration(i)*latencyWindow + latencyWindow/2).Seconds()
		p50.Samples = append(p50.Samples, results.Sample{At: at, Value: pc.P50})
		p99.Samples = append(p99.Samples, results.Sample{At: at, Value: pc.P99})
		if !touched[i] {
			quiet.Samples = append(quiet.Samples, results.Sample{At: at, Value: pc.P99})
		}
	}
	return []results.SoakSeries{p50, p99, quiet}
}

// Stretch sets the load's duration to d and scales every fault line's
// count in proportion (at least 1), so the faults keep their pace over a
// longer or shorter run (SOAK_DURATION). d must be positive and the load
// must have a duration.
func (s *Scenario) Stretch(d time.Duration) error {
	old := s.Load.Duration.D()
	if d <= 0 || old <= 0 {
		return fmt.Errorf("scenario %s: stretch to %s: need a positive duration and a load with one", s.Name, d)
	}
	for i := range s.Nemesis {
		s.Nemesis[i].Count = max(1, int(float64(s.Nemesis[i].Count)*float64(d)/float64(old)+0.5))
	}
	s.Load.Duration = Duration(d)
	return s.validate()
}
