package scenario

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/load"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

// Ceilings of a search (search.ceilings), measured in the same run after
// the search, so the scenario's best rate can be read as a share of them:
//
//   - results.CeilingHTTP: the same generator, the same steps and the same
//     bound against a null handler, a tiny HTTP server inside the harness
//     that answers 200 to every POST /publish without reading anything
//     else: what the generator and the machine's loopback HTTP can do.
//     The handler runs in the harness process, so its CPU is in the
//     generator's figures of these steps.
//   - results.CeilingAppend: the service's append path alone (queue.Append,
//     the Lua script the publish handler runs, grouped as the service
//     groups it) called from the harness against the run's Redis, open
//     model at the same steps with as many in flight as needed, no HTTP,
//     no workers. Its stream is under a prefix of its own, deleted after.

// ceilingAppenders bounds the appends in flight at once in the append
// ceiling (the service's HTTP server has no such bound; 256 is well above
// what the rates measured need: rate × latency).
const ceilingAppenders = 256

// runCeilings measures both ceilings from rate start up, stopping at the
// first step that misses the bound.
func runCeilings(ctx context.Context, s *Scenario, o Options, tr *tracker, e env.Env, runID string, start float64) []results.Ceiling {
	var out []results.Ceiling
	c, err := httpCeiling(ctx, s, o, tr, runID, start)
	if err != nil {
		c = results.Ceiling{Name: results.CeilingHTTP, Error: err.Error()}
	}
	out = append(out, c)
	c, err = appendCeiling(ctx, s, o, tr, e, runID, start)
	if err != nil {
		c = results.Ceiling{Name: results.CeilingAppend, Error: err.Error()}
	}
	return append(out, c)
}

// ceilingSteps runs step(rate) from start up by the search's factor, at
// most its max_steps, until a step does not pass; it returns the steps
// and the highest passing rate.
func ceilingSteps(s *Scenario, start float64, step func(rate float64) (results.Step, error)) ([]results.Step, float64, error) {
	var steps []results.Step
	best := 0.0
	rate := start
	for range s.Search.MaxSteps {
		st, err := step(rate)
		if err != nil {
			return steps, best, err
		}
		steps = append(steps, st)
		if !st.Pass {
			break
		}
		best = rate
		rate *= s.Search.Factor
	}
	return steps, best, nil
}

func httpCeiling(ctx context.Context, s *Scenario, o Options, tr *tracker, runID string, start float64) (results.Ceiling, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return results.Ceiling{}, fmt.Errorf("ceiling: null handler: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	defer func() {
		_ = srv.Close()
		wg.Wait()
	}()
	target := "http://" + ln.Addr().String()
	src, err := gen.New(func() gen.Config { c := sourceConfig(s, runID+"-ceiling"); c.Events = 0; return c }())
	if err != nil {
		return results.Ceiling{}, fmt.Errorf("ceiling: events: %w", err)
	}
	bound := s.Search.P99.D()
	steps, best, err := ceilingSteps(s, start, func(rate float64) (results.Step, error) {
		tr.enter(PhaseSearch, "HTTP ceiling: %.0f req/s against a null handler for %s", rate, s.Search.StepDuration.D())
		hist, err := history.NewRecorder("") // not the run's: the checker must not see these
		if err != nil {
			return results.Step{}, err
		}
		m := stepModel(s, rate, s.Search.StepDuration.D())
		stepStart := time.Now()
		sum, err := load.Run(ctx, searchConns(load.Config{Targets: []string{target}, Model: m, Source: src, History: hist}))
		if err != nil {
			return results.Step{}, fmt.Errorf("ceiling: load at %.0f req/s: %w", rate, err)
		}
		p := results.PerfOf(results.Window(hist.Ops(), stepStart, time.Now()), stepStart)
		st := results.Step{Rate: rate, Achieved: p.RequestsPerSec, EventsPerSec: p.EventsPerSec, HTTP: p.HTTP, ErrorRate: p.ErrorRate,
			SendLagMax: float64(sum.MaxSendLag) / float64(time.Millisecond)}
		generatorMeasures(&st, sum)
		v := judgeStep(stepMeasures{Bound: bound, Rate: rate, Duration: s.Search.StepDuration.D(), P99: p.HTTP.P99,
			P99FromSend: st.HTTPFromSendP99, Achieved: p.RequestsPerSec, Sent: sum.Requests, ErrorRate: p.ErrorRate,
			BacklogOK: true, SendLagP99MS: st.SendLagP99})
		st.Pass, st.GeneratorLimited = v.Pass, v.GeneratorLimited
		o.logf("%s: HTTP ceiling: %.0f req/s asked, %.0f done, p99 %.2f ms, send lag p99 %.2f ms, generator %.1f us/request: pass=%v",
			s.Name, rate, p.RequestsPerSec, p.HTTP.P99, st.SendLagP99, st.GeneratorCPUPerRequestUS, st.Pass)
		return st, nil
	})
	return results.Ceiling{Name: results.CeilingHTTP, Steps: steps, BestRate: best}, err
}

func appendCeiling(ctx context.Context, s *Scenario, o Options, tr *tracker, e env.Env, runID string, start float64) (results.Ceiling, error) {
	re, ok := e.(interface{ RedisURL() string })
	if !ok {
		return results.Ceiling{Name: results.CeilingAppend, NotMeasured: "the backend gives the harness no Redis URL (an external target)"}, nil
	}
	prefix := "chronicle-ceiling-" + runID + ":"
	q, err := queue.Open(ctx, re.RedisURL(), queue.Options{Prefix: prefix, MaxLen: 1 << 50, Group: true, PoolSize: 16})
	if err != nil {
		return results.Ceiling{}, fmt.Errorf("ceiling: append: %w", err)
	}
	defer q.Close()
	defer func() {
		if err := dropKeys(re.RedisURL(), prefix); err != nil {
			o.logf("%s: append ceiling: %v", s.Name, err)
		}
	}()
	src, err := gen.New(func() gen.Config { c := sourceConfig(s, runID+"-append"); c.Events = 0; return c }())
	if err != nil {
		return results.Ceiling{}, fmt.Errorf("ceiling: events: %w", err)
	}
	bound := s.Search.P99.D()
	steps, best, err := ceilingSteps(s, start, func(rate float64) (results.Step, error) {
		tr.enter(PhaseSearch, "append ceiling: %.0f appends/s to Redis for %s", rate, s.Search.StepDuration.D())
		return appendStep(ctx, q, src, rate, s.Search.StepDuration.D(), bound)
	})
	for _, st := range steps {
		o.logf("%s: append ceiling: %.0f appends/s asked, %.0f done, p99 %.2f ms, send lag p99 %.2f ms: pass=%v",
			s.Name, st.Rate, st.Achieved, st.HTTP.P99, st.SendLagP99, st.Pass)
	}
	return results.Ceiling{Name: results.CeilingAppend, Steps: steps, BestRate: best}, err
}

// appendStep appends the source's requests at rate for d, each stamped
// with its scheduled time (an append that starts late counts its delay),
// at most ceilingAppenders in flight.
func appendStep(ctx context.Context, q *queue.Queue, src *gen.Source, rate float64, d, bound time.Duration) (results.Step, error) {
	n := int(rate * d.Seconds())
	per := time.Duration(float64(time.Second) / rate)
	lat := make([]float64, n)
	lags := make([]time.Duration, n)
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	sem := make(chan struct{}, ceilingAppenders)
	var wg sync.WaitGroup
	cpu0 := load.ProcessCPU()
	began := time.Now()
	for i := range n {
		due := began.Add(time.Duration(i) * per)
		if w := time.Until(due); w > 0 {
			t := time.NewTimer(w)
			select {
			case <-ctx.Done():
				t.Stop()
				wg.Wait()
				return results.Step{}, ctx.Err()
			case <-t.C: // the pacing of an open model, not a synchronisation
			}
		}
		req, ok := src.Next()
		if !ok {
			break
		}
		sem <- struct{}{}
		lags[i] = max(0, time.Since(due))
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := q.Append(ctx, queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: len(req.Keys), Body: req.Body})
			lat[i] = float64(time.Since(due)) / float64(time.Millisecond)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	secs := time.Since(began).Seconds()
	cpu := load.ProcessCPU() - cpu0
	st := results.Step{Rate: rate, Achieved: float64(n) / secs, EventsPerSec: float64(n) / secs, HTTP: results.PercentilesOf(lat),
		SendLagMax: float64(slices.Max(lags)) / float64(time.Millisecond), SendLagP99: durationP99(lags),
		GeneratorCPUSeconds: cpu.Seconds()}
	if n > 0 {
		st.ErrorRate = float64(failed.Load()) / float64(n)
		st.GeneratorCPUPerRequestUS = float64(cpu.Microseconds()) / float64(n)
	}
	st.Pass = judgeStep(stepMeasures{Bound: bound, Rate: rate, Duration: d, P99: st.HTTP.P99, P99FromSend: st.HTTP.P99,
		Achieved: st.Achieved, Sent: int64(n), ErrorRate: st.ErrorRate, BacklogOK: true, SendLagP99MS: st.SendLagP99}).Pass
	if e := firstErr.Load(); e != nil && st.ErrorRate > 0 {
		return st, fmt.Errorf("ceiling: append at %.0f/s: %d of %d failed, the first: %w", rate, failed.Load(), n, *e)
	}
	return st, nil
}

// dropKeys deletes the append ceiling's keys (its stream and backlog).
func dropKeys(url, prefix string) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("ceiling: parse Redis URL: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rdb.Del(ctx, prefix+"stream", prefix+"backlog", prefix+"dead").Err(); err != nil {
		return fmt.Errorf("ceiling: delete %s*: %w", prefix, err)
	}
	return nil
}
