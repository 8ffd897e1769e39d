package scenario

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/load"
	"github.com/chronicleweaver/chronicleweaver/harness/nemesis"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/harness/subject"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// startEnv starts the backend the options ask for.
func startEnv(ctx context.Context, s *Scenario, o Options, dir string) (env.Env, error) {
	backend := o.Backend
	if o.Target != "" {
		backend = BackendExternal
	}
	switch backend {
	case BackendExternal:
		if s.Env.RedisDisk > 0 || s.Env.PostgresDisk > 0 {
			return nil, fmt.Errorf("%w: the external backend starts no dependency (env redis_disk, postgres_disk)", env.ErrCannotMount)
		}
		if o.Target == "" {
			return nil, errors.New("scenario: the external backend needs --target")
		}
		return env.External(o.Target, o.DatabaseURL), nil
	case BackendAuto:
		if env.DockerAvailable(ctx) {
			backend = BackendDocker
		}
	case "", BackendLocal, BackendDocker:
	default:
		return nil, fmt.Errorf("scenario: unknown backend %q (%s, %s, %s, %s)", backend, BackendLocal, BackendDocker, BackendAuto, BackendExternal)
	}
	if backend == BackendDocker {
		if o.PlantedBug != "" {
			return nil, errors.New("scenario: planted bugs run on the local backend only (the image is built without them)")
		}
		if s.Env.Durable {
			o.logf("%s: the docker backend runs PostgreSQL with its image's settings (durable)", s.Name)
		}
		if o.ServiceCmd != "" {
			return nil, errors.New("scenario: --service-cmd runs on the local backend; the docker backend takes --service-image")
		}
		if s.Env.RedisDisk > 0 || s.Env.PostgresDisk > 0 {
			return nil, fmt.Errorf("%w: the docker backend puts no dependency on a small filesystem (env redis_disk, postgres_disk): run it on the local backend", env.ErrCannotMount)
		}
		return env.StartDocker(ctx, env.DockerOptions{
			Services: s.Env.Services, Settings: s.Env.Settings, AppendFsync: s.Env.Fsync, RunDir: dir, Logf: o.Logf,
			ServiceImage: o.ServiceImage, Subject: o.Subject,
		})
	}
	if o.ServiceImage != "" {
		return nil, errors.New("scenario: --service-image runs on the docker backend (--backend docker); the local backend takes --service-cmd")
	}
	settings := maps.Clone(s.Env.Settings)
	if settings == nil {
		settings = map[string]string{}
	}
	var tags []string
	if o.PlantedBug != "" {
		settings[planted.EnvVar] = o.PlantedBug
		tags = append(tags, plantedBugsTag)
	}
	links := false
	for _, f := range s.Nemesis {
		links = links || nemesis.OnLink(f.Fault) || f.During != nil && nemesis.OnLink(f.During.Fault)
	}
	return env.StartLocal(ctx, env.LocalOptions{
		Services: s.Env.Services, Settings: settings, Durable: s.Env.Durable, AppendFsync: s.Env.Fsync,
		NoAOF: o.PlantedBug == planted.RedisNoAOF, Binary: o.Binary, BuildTags: tags, RunDir: dir,
		// The fault proxy costs a copy per packet: only where links fail.
		Proxy: links, Logf: o.Logf,
		Subject: o.Subject, Command: o.ServiceCmd, SourceDir: o.SourceDir,
		RedisDisk: int64(s.Env.RedisDisk), PostgresDisk: int64(s.Env.PostgresDisk),
	})
}

// runSearch steps the open-model rate up while each step holds the latency
// bound without errors or a growing backlog, then (Final) sends the
// scenario's events at the best rate. It returns when the measured window
// starts and the event namespace it used.
//
// When even the first step misses the bound, no rate passed: that is a
// measure of the machine, not a fault of the service, so the run goes on to
// the drain and the checker, which judge it, with the first step as its
// measured window; the result records the missed bound (a search with steps
// and no best rate) and the suite does not fail on it.
func runSearch(ctx context.Context, s *Scenario, o Options, tr *tracker, e env.Env, hist *history.Recorder, runID string, res *results.Scenario) (since, until time.Time, prefix string, err error) {
	cl, err := o.client(e.Targets()[0], e)
	if err != nil {
		return time.Time{}, time.Time{}, "", err
	}
	backlogKnown := true
	if _, has, err := cl.ReadStats(ctx); err == nil && !has.Queue() && cl.Backlog == nil {
		backlogKnown = false
		res.Notes = append(res.Notes, "backlog not measured (the subject reports no queue_depth and declares no backlog): each step was judged by latency, errors and the rate achieved only")
	}
	cfg := sourceConfig(s, runID+"-s")
	cfg.Events = 0
	src, err := gen.New(cfg)
	if err != nil {
		return time.Time{}, time.Time{}, "", fmt.Errorf("scenario: events: %w", err)
	}
	bound := s.Search.P99.D()
	rate := s.Search.Start
	var bestStart, bestEnd, firstStart, firstEnd time.Time
	for step := 0; step < s.Search.MaxSteps; step++ {
		tr.enter(PhaseSearch, "step %d of at most %d: %.0f req/s for %s (bound: HTTP p99 at most %s)",
			step+1, s.Search.MaxSteps, rate, s.Search.StepDuration.D(), bound)
		st0, err := cl.Stats(ctx)
		if err != nil {
			return time.Time{}, time.Time{}, "", fmt.Errorf("scenario: stats: %w", err)
		}
		svc0, svcOK := serviceCPU(e)
		stepStart := time.Now()
		m := stepModel(s, rate, s.Search.StepDuration.D())
		sum, err := load.Run(ctx, searchConns(o.loadConfig(e, load.Config{Targets: e.Targets(), Token: o.Token, Model: m, Source: src, History: hist,
			Progress: progress(tr, PhaseSearch, m, 0)})))
		if err != nil {
			return time.Time{}, time.Time{}, "", fmt.Errorf("scenario: load at %.0f req/s: %w", rate, err)
		}
		stepEnd := time.Now()
		svc1, svc1OK := serviceCPU(e)
		if step == 0 {
			firstStart, firstEnd = stepStart, stepEnd
		}
		st1, err := cl.Stats(ctx)
		if err != nil {
			return time.Time{}, time.Time{}, "", fmt.Errorf("scenario: stats: %w", err)
		}
		p := results.PerfOf(results.Window(hist.Ops(), stepStart, stepEnd), stepStart)
		offeredPerSec := int64(rate * float64(s.Events.PerRequest))
		st := results.Step{
			Rate: rate, Achieved: p.RequestsPerSec, EventsPerSec: p.EventsPerSec, HTTP: p.HTTP,
			BacklogGrowth: st1.QueueDepth - st0.QueueDepth, ErrorRate: p.ErrorRate,
			SendLagMax: float64(sum.MaxSendLag) / float64(time.Millisecond),
		}
		generatorMeasures(&st, sum)
		if svcOK && svc1OK && sum.Requests > 0 {
			st.ServiceCPUPerRequestUS = (svc1 - svc0) * 1e6 / float64(sum.Requests)
		}
		// Held: latency bound met, no errors, the offered rate achieved, and
		// the backlog left at the end of the step is under a quarter of a
		// second of offered events (the workers keep up). A step missed
		// only by the generator is labelled so (judgeStep).
		v := judgeStep(stepMeasures{Bound: bound, Rate: rate, Duration: s.Search.StepDuration.D(),
			P99: p.HTTP.P99, P99FromSend: st.HTTPFromSendP99, Achieved: p.RequestsPerSec, Sent: sum.Requests,
			ErrorRate: p.ErrorRate, BacklogOK: !backlogKnown || st1.QueueDepth <= offeredPerSec/4, SendLagP99MS: st.SendLagP99})
		st.Pass, st.GeneratorLimited = v.Pass, v.GeneratorLimited
		res.Steps = append(res.Steps, st)
		o.logf("%s: step %d: %.0f req/s asked, %.0f done, %.0f events/s, p99 %.2f ms (%.2f ms from the actual send), send lag p99 %.2f ms max %.2f ms, "+
			"generator %.1f us/request, service %.1f us/request, backlog %d: pass=%v generator-limited=%v",
			s.Name, step+1, rate, p.RequestsPerSec, p.EventsPerSec, p.HTTP.P99, st.HTTPFromSendP99, st.SendLagP99, st.SendLagMax,
			st.GeneratorCPUPerRequestUS, st.ServiceCPUPerRequestUS, st1.QueueDepth, st.Pass, st.GeneratorLimited)
		dctx, cancel := context.WithTimeout(ctx, s.DrainTimeout.D())
		_, _, derr := cl.WaitDrained(dctx)
		cancel()
		if derr != nil {
			return time.Time{}, time.Time{}, "", fmt.Errorf("scenario: drain after step %d: %w", step+1, derr)
		}
		if !st.Pass {
			if step == 0 && o.Peers {
				// The comparison measures a subject that held no step at
				// its first one, rather than failing the run.
				res.Notes = append(res.Notes, fmt.Sprintf("no step held the bound: the figures are of the first step, %.0f req/s", rate))
				return stepStart, stepEnd, runID + "-s", nil
			}
			break
		}
		res.BestRate, bestStart, bestEnd = rate, stepStart, stepEnd
		rate *= s.Search.Factor
	}
	if s.Search.Ceilings {
		res.Ceilings = runCeilings(ctx, s, o, tr, e, runID, max(s.Search.Start, res.BestRate))
		if err := ctx.Err(); err != nil {
			return time.Time{}, time.Time{}, "", err
		}
	}
	if res.BestRate == 0 {
		o.logf("%s: even the lowest step, %.0f req/s, did not hold (see the step above): no rate passed, recorded as such; "+
			"the first step is the measured window and the checker still judges the run", s.Name, s.Search.Start)
		return firstStart, firstEnd, runID + "-s", nil
	}
	if !s.Search.Final || s.Events.Total == 0 {
		return bestStart, bestEnd, runID + "-s", nil
	}
	fsrc, err := gen.New(sourceConfig(s, runID+"-f"))
	if err != nil {
		return time.Time{}, time.Time{}, "", fmt.Errorf("scenario: events: %w", err)
	}
	finalStart := time.Now()
	m := stepModel(s, res.BestRate, 0)
	tr.enter(PhaseLoad, "sending %d events at %.0f req/s, the highest passing rate", s.Events.Total, res.BestRate)
	if _, err := load.Run(ctx, searchConns(o.loadConfig(e, load.Config{Targets: e.Targets(), Token: o.Token, Model: m, Source: fsrc, History: hist,
		Progress: progress(tr, PhaseLoad, m, 0)}))); err != nil {
		return time.Time{}, time.Time{}, "", fmt.Errorf("scenario: final load: %w", err)
	}
	return finalStart, time.Time{}, runID + "-f", nil
}

// searchMaxConns caps the connections of a rate search's load to each
// target (and of its HTTP ceiling). The workers stay uncapped, so every
// request still leaves on its schedule and is stamped with its scheduled
// time: one that waits for a free connection counts the wait in its
// latency (in the p99 from the send too: the connections are busy with
// the target's answers). Uncapped, a generator that fell behind sent its
// backlog at once on as many new connections, and the dials and their
// goroutines roughly doubled its CPU per request (BenchmarkOpenNull at
// 4,000 req/s: 339-444 µs per request unbounded, 187-218 with 64, on a
// busy machine), which made it fall further behind. 64 is what wrk -c64
// used for the hand measurement: at 8,000 req/s it allows a mean
// latency up to 8 ms.
const searchMaxConns = 64

// searchConns applies searchMaxConns to a search's load configuration
// (a lower cap, e.g. the docker backend's, stays).
func searchConns(cfg load.Config) load.Config {
	if cfg.MaxConns == 0 || cfg.MaxConns > searchMaxConns {
		cfg.MaxConns = searchMaxConns
	}
	return cfg
}

// serviceCPU is the CPU seconds used so far by the service nodes of e;
// false when a node's usage cannot be read (an external target).
func serviceCPU(e env.Env) (float64, bool) {
	total, n := 0.0, 0
	for _, node := range e.Nodes() {
		if node == env.Redis || node == env.Postgres {
			continue
		}
		cpu, _, err := e.Usage(node)
		if err != nil {
			return 0, false
		}
		total += cpu
		n++
	}
	return total, n > 0
}

// measure fills res.Perf from the history (publish requests invoked in
// [since, until)), the database (publish-to-commit latency, last commit of
// the events received in that window) and the environment (CPU, memory).
//
// rb is a foreign subject's table of stored events (nil: ours): its commit
// time column gives the commit latency, measured from its receive time
// column or, where it has none, from the request's send.
func measure(ctx context.Context, e env.Env, rb *subject.ReadBack, ops []history.Op, prefix string, since, until time.Time, res *results.Scenario, keepLatencies bool) error {
	ops = results.Window(ops, since, until)
	p := results.PerfOf(ops, since)
	var errs []error
	switch db := e.DatabaseURL(); {
	case db != "" && rb != nil && rb.CommittedAt == "":
		p.CommitNotMeasured = "the subject's table has no commit time column (readback.committed_at)"
	case db != "" && rb != nil:
		ms, rows, last, err := commitLatencies(ctx, db, *rb, ops, prefix, since, until)
		if err != nil {
			errs = append(errs, err)
		}
		p.Commit = results.PercentilesOf(ms)
		if rb.ReceivedAt == "" {
			p.CommitFrom = results.CommitFromSend
		}
		p.SetCommitSpan(rows, results.FirstInvoke(ops, since), last)
	case db == "":
		p.CommitNotMeasured = "no database to read commit times from (an external target without --database-url)"
	default:
		lat, err := client.CommitLatencies(ctx, db, prefix, since, until)
		if err != nil {
			errs = append(errs, err)
		}
		ms := make([]float64, len(lat))
		for i, s := range lat {
			ms[i] = s * 1000
		}
		p.Commit = results.PercentilesOf(ms)
		rows, lastCommit, err := client.CommitSpan(ctx, db, prefix, since, until)
		if err != nil {
			errs = append(errs, err)
		} else {
			p.SetCommitSpan(rows, results.FirstInvoke(ops, since), lastCommit)
		}
	}
	services := 0
	for _, n := range e.Nodes() {
		if n == env.Redis || n == env.Postgres {
			continue // the service instances' usage only
		}
		services++
		cpu, rss, err := e.Usage(n)
		if err != nil {
			if !errors.Is(err, env.ErrUnsupported) {
				errs = append(errs, err)
			}
			p.UsageNotMeasured = fmt.Sprintf("usage of %s: %v", n, err)
			continue
		}
		p.CPUSeconds += cpu
		p.PeakRSSMiB = max(p.PeakRSSMiB, float64(rss)/(1<<20))
	}
	if services == 0 {
		p.UsageNotMeasured = "the harness did not start the service (an external target): its CPU and memory are not measured"
	}
	res.Perf = &p
	res.Series = results.Series(ops, time.Second)
	if keepLatencies {
		res.Latencies = results.Latencies(ops)
	}
	return errors.Join(errs...)
}

// runBaseline inserts the scenario's events straight into a fresh database
// on the same PostgreSQL with the service's own batch apply (no HTTP, no
// Redis), with as many concurrent appliers as the service has workers and
// as many requests per batch as its BATCH_SIZE, and its UPSERT_METHOD: the
// service's configuration under the scenario's settings (service/config's
// defaults where they set nothing).
func runBaseline(ctx context.Context, s *Scenario, e env.Env, res *results.Scenario) error {
	db := e.DatabaseURL()
	if db == "" || s.Events.Total == 0 {
		return nil
	}
	cfg, err := config.FromEnv(func(k string) string { return s.Env.Settings[k] })
	if err != nil {
		return fmt.Errorf("env.settings: %w", err)
	}
	workers, batch := cfg.WorkerCount, cfg.BatchSize
	url, drop, err := client.FreshDatabase(ctx, db, "baseline")
	if err != nil {
		return err
	}
	defer drop()
	st, err := store.Open(ctx, url, store.Options{MaxConns: workers + 2, Method: cfg.UpsertMethod})
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	src, err := gen.New(sourceConfig(s, "baseline"))
	if err != nil {
		return err
	}
	var entries []store.Entry
	var copies int64
	now := time.Now()
	for i, r := range src.All() {
		evs, err := event.DecodeRequest(r.Body, event.DefaultLimits())
		if err != nil {
			return fmt.Errorf("decode generated request %d: %w", i, err)
		}
		copies += int64(len(evs))
		entries = append(entries, store.Entry{Token: queue.NewToken(), EntryID: fmt.Sprintf("%d-0", i+1),
			ReceivedAt: now, QueuedAt: now, Events: evs})
	}
	batches := make(chan []store.Entry)
	go func() {
		defer close(batches)
		for i := 0; i < len(entries); i += batch {
			batches <- entries[i:min(i+batch, len(entries))]
		}
	}()
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if _, err := st.ApplyBatch(ctx, "baseline-"+strconv.Itoa(w), b); err != nil {
					errc <- err
					for range batches {
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	b := &results.Baseline{Events: copies, Seconds: secs, EventsPerSec: float64(copies) / secs}
	if res.Perf != nil && b.EventsPerSec > 0 {
		b.Ratio = res.Perf.EventsPerSec / b.EventsPerSec
	}
	res.Baseline = b
	return nil
}
