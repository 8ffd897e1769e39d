package scenario

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/load"
	"github.com/chronicleweaver/chronicleweaver/harness/nemesis"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/harness/subject"
)

// ErrGap is wrapped by the error of a run the subject cannot take (its
// request shape cannot carry the scenario's requests): nothing is measured.
var ErrGap = errors.New("not measured")

// ErrSkipped is wrapped by the error of a run that could not be carried
// out on this machine or backend (a disk it cannot mount): nothing is
// measured, and the result says why (results.Scenario.Skipped). A suite
// shows it as skipped, never as passed.
var ErrSkipped = errors.New("skipped")

// ErrStart is wrapped by the error of a run whose environment did not
// start (a subject that never became ready, an image that is missing).
var ErrStart = errors.New("the environment did not start")

// Options say where and how to run a scenario.
type Options struct {
	Smoke bool // the scenario's smoke overrides apply
	// RunsDir is the parent of run folders (default "runs").
	RunsDir string
	// Backend is BackendLocal (default), BackendDocker, BackendAuto or
	// BackendExternal.
	Backend string
	// Target and DatabaseURL select the external backend.
	Target      string
	DatabaseURL string
	Token       string
	// Binary is a prebuilt service binary (local backend); "" builds one.
	Binary string
	// PlantedBug switches on one planted bug (negative controls).
	PlantedBug string
	// Subject is what runs as the service (harness/subject): nil is this
	// module's service, read through the contract as it is.
	Subject *subject.Subject
	// ServiceCmd runs this command line as each service instance (local
	// backend; ${VAR} of the environment contract expanded per instance),
	// read through Subject's mapping.
	ServiceCmd string
	// ServiceImage runs this image as each service container (docker backend).
	ServiceImage string
	// SourceDir is a foreign subject's checkout (local backend: its
	// run.dir is relative to it).
	SourceDir string
	// SampleEvery, when above 0, samples the environment's resources
	// that often while the load runs (the soak sampler, soak.go) into
	// the result's Soak.
	SampleEvery time.Duration
	// Peers: the comparison of subjects (`make peers`). A rate search
	// whose every step missed its bound is measured at its first step
	// instead of failing the run.
	Peers bool
	// KeepRuns is how many run folders of each scenario RunsDir keeps
	// (the newest, this run's included); 0 keeps every one. The command
	// line and the fault suite take it from KeepRunsSetting.
	KeepRuns int
	// Logf receives lasting lines: each phase as it starts, each fault,
	// each rate-search step, the verdict; nil is quiet.
	Logf func(format string, args ...any)
	// Status receives where the run stands, about once a second while the
	// load runs and at each phase; nil is quiet. A status replaces the one
	// before (a live line on a terminal, a line every few seconds in a log).
	Status func(Status)
}

// Status is where a running scenario stands.
type Status struct {
	Scenario string
	Phase    string        // one of the Phase constants
	Elapsed  time.Duration // since the run started
	Detail   string        // the phase's figures, e.g. "12s of 30s, sent 1200 ok 1190"
}

// String is the status as one line, e.g.
// "crash-service [faults, 14s] 12s of 30s: sent 1200, ok 1190, ...".
func (s Status) String() string {
	line := fmt.Sprintf("%s [%s, %s]", s.Scenario, s.Phase, s.Elapsed.Round(time.Second))
	if s.Detail != "" {
		line += " " + s.Detail
	}
	return line
}

// Phases of a run, in order (a rate search has search steps instead of
// load; faults is the part of the load during which faults are planned).
const (
	PhaseStart  = "start"
	PhaseLoad   = "load"
	PhaseFaults = "faults"
	PhaseSearch = "search"
	PhaseAttack = "attack"
	PhaseDrain  = "drain"
	PhaseCheck  = "check"
)

// tracker reports a run's phases (through Logf and Status) and its status.
type tracker struct {
	o     Options
	name  string
	start time.Time
	phase string
}

// enter starts phase: a Logf line "NAME: PHASE: what" and a status.
func (t *tracker) enter(phase, format string, args ...any) {
	t.phase = phase
	what := fmt.Sprintf(format, args...)
	t.o.logf("%s: %s: %s", t.name, phase, what)
	t.status(phase, what)
}

// status reports the current phase (or phase, when not empty) with detail.
func (t *tracker) status(phase, detail string) {
	if phase != "" {
		t.phase = phase
	}
	if t.o.Status != nil {
		t.o.Status(Status{Scenario: t.name, Phase: t.phase, Elapsed: time.Since(t.start), Detail: detail})
	}
}

// afterLastHeal is how long the load goes on after the nemesis is done;
// lateFaultsCap bounds how far past their plan the faults may run late
// before the load stops anyway.
const (
	afterLastHeal = 3 * time.Second
	lateFaultsCap = 2 * time.Minute
)

// Backends (Options.Backend).
const (
	BackendLocal    = "local"    // local processes
	BackendDocker   = "docker"   // containers (testcontainers)
	BackendAuto     = "auto"     // docker when a daemon answers, else local
	BackendExternal = "external" // an already running service (Options.Target)
)

// plantedBugsTag is the build tag of the service binaries that carry the
// planted bugs (service/planted).
const plantedBugsTag = "plantedbugs"

func (o Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Run runs one scenario from start to verdict. The returned result says
// whether the run was valid; an error means the run itself could not be
// carried out (and the result records it).
func Run(ctx context.Context, s *Scenario, o Options) (results.Scenario, error) {
	res := results.Scenario{Name: s.Name, Kind: s.Kind, Description: strings.TrimSpace(s.Description), Config: s,
		Published: s.Published, Mode: results.Full}
	if o.Smoke {
		res.Mode = results.Smoke
	}
	dir, err := runDir(o, s.Name)
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	res.RunDir = RepoRelative(dir)
	if o.Subject != nil {
		res.Subject = o.Subject.Name
		if gap := o.Subject.Gap(s.Events.PerRequest); gap != "" {
			err = fmt.Errorf("scenario %s, subject %s: %w: %s", s.Name, o.Subject.Name, ErrGap, gap)
		}
	}
	if err == nil {
		tr := &tracker{o: o, name: s.Name, start: time.Now()}
		err = run(ctx, s, o, tr, dir, &res)
	}
	if errors.Is(err, env.ErrCannotMount) {
		res.Skipped = "cannot mount: " + err.Error()
		err = fmt.Errorf("scenario %s: %w: %s", s.Name, ErrSkipped, res.Skipped)
		o.logf("%s: skipped, %s", s.Name, res.Skipped)
	}
	if err != nil {
		res.Error = err.Error()
		res.Valid = false
		res.Violations = append(res.Violations, "run error: "+err.Error())
	}
	if b, jerr := json.MarshalIndent(res, "", "  "); jerr == nil {
		_ = os.WriteFile(filepath.Join(dir, "result.json"), b, 0o644)
	}
	return res, err
}

// runDir creates the run's folder under o.RunsDir (see newRunDir) and
// returns its absolute path.
func runDir(o Options, name string) (string, error) {
	parent := o.RunsDir
	if parent == "" {
		parent = "runs"
	}
	suffix := name
	if o.PlantedBug != "" {
		suffix += "-bug-" + o.PlantedBug
	}
	return newRunDir(parent, suffix, o.KeepRuns, time.Now())
}

// run does the work of Run in run folder dir; res is filled as it goes.
func run(ctx context.Context, s *Scenario, o Options, tr *tracker, dir string, res *results.Scenario) error {
	tr.enter(PhaseStart, "%s", startWhat(s, o))
	e, err := startEnv(ctx, s, o, dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	defer func() {
		if cerr := e.Close(); cerr != nil {
			o.logf("%s: closing the environment: %v", s.Name, cerr)
		}
	}()
	info := e.Info()
	res.Environment = results.Environment{Backend: info.Backend, Services: info.Services, Postgres: info.PostgresVersion,
		Redis: info.RedisVersion, DurableDB: s.Env.Durable, Settings: info.Settings, Subject: res.Subject}
	if s.Kind == KindSearch {
		res.SearchBoundMS = float64(s.Search.P99.D()) / float64(time.Millisecond)
	}
	hist, err := history.NewRecorder(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return err
	}
	defer hist.Close()

	targets := e.Targets()
	cl, err := o.client(targets[0], e)
	if err != nil {
		return err
	}
	runID := newRunID(s.Name)
	if s.Attack != nil {
		// The attacker's valid data, stored and drained before the run's
		// stats are first read: the checker sees only the load.
		if err := seedAttack(ctx, s, o, tr, cl, targets[0], runID); err != nil {
			return err
		}
	}
	before, has, err := cl.ReadStats(ctx)
	if err != nil {
		return fmt.Errorf("scenario: stats before the run: %w", err)
	}
	gaps := o.gaps(has, cl)
	var auditBefore *checker.Audit
	if a, err := cl.AuditSummary(ctx); err == nil {
		auditBefore = &a
	}
	ready := func(ctx context.Context) error {
		for _, t := range targets {
			c, err := o.client(t, e)
			if err != nil {
				return err
			}
			if _, err := c.WaitReady(ctx); err != nil {
				return err
			}
		}
		return nil
	}

	stopSampler, sampledFrom, err := startSampler(ctx, o, e)
	if err != nil {
		return fmt.Errorf("scenario: sampler: %w", err)
	}
	sampling := true
	defer func() {
		if sampling {
			stopSampler()
		}
	}()

	// The measured window and namespace: the whole run, or a search's
	// final (or best) part.
	since, until, prefix := time.Now(), time.Time{}, runID
	switch {
	case s.Kind == KindSearch:
		if since, until, prefix, err = runSearch(ctx, s, o, tr, e, hist, runID, res); err != nil {
			return err
		}
	case s.Attack != nil:
		if err := runAttack(ctx, s, o, tr, e, hist, runID, res); err != nil {
			return err
		}
	default:
		if err := runLoad(ctx, s, o, tr, e, hist, runID, ready, res); err != nil {
			return err
		}
	}

	sampling = false
	if res.Soak = stopSampler(); res.Soak != nil {
		res.Soak.Series = append(res.Soak.Series, latencySeries(hist.Ops(), res.Faults, sampledFrom)...)
	}

	// Heal is done by the nemesis; drain, read back, check.
	tr.enter(PhaseDrain, "waiting until every service is ready and the queue is empty (at most %s)", s.DrainTimeout.D())
	dctx, cancel := context.WithTimeout(ctx, s.DrainTimeout.D())
	if err := ready(dctx); err != nil {
		o.logf("%s: not every service is ready after the run: %v", s.Name, err)
	}
	after, drainTime, derr := cl.WaitDrained(dctx)
	cancel()
	res.DrainTime = drainTime.Seconds()
	if derr != nil {
		o.logf("%s: queue not drained: %v", s.Name, derr)
		if st, err := cl.Stats(ctx); err == nil {
			after = st
		}
	}
	tr.enter(PhaseCheck, "reading back the stored events and checking the history")
	rb := checker.Readback{Before: before, After: after, Drained: derr == nil, AuditBefore: auditBefore, Gaps: gaps}
	if a, err := cl.AuditSummary(ctx); err == nil {
		rb.AuditAfter = &a
	}
	rb.Stored, err = o.readBack(ctx, e, cl, runID)
	switch {
	case errors.Is(err, client.ErrIncomplete), errors.Is(err, client.ErrNotOffered):
		rb.Gaps.Stored = err.Error()
	case err != nil:
		return fmt.Errorf("scenario: read back stored events: %w", err)
	}
	if db := e.DatabaseURL(); db != "" && o.readBackTable() == nil && o.idempotencyHeader(s) != "" {
		// Keyed requests to ours: which were applied, and how often.
		if rb.Applied, err = client.AppliedEntries(ctx, db, runID); err != nil {
			return fmt.Errorf("scenario: read back applied entries: %w", err)
		}
	}
	ops := hist.Ops()
	res.Check = checker.Check(ops, rb)
	// The verdict: the checker's violations, every fault that did not apply
	// as planned, every expected effect not seen.
	res.Violations = append([]string{}, res.Check.Violations...)
	res.FaultErrors = faultErrors(res.Faults, s.planned())
	res.Violations = append(res.Violations, res.FaultErrors...)
	res.Effects = measureEffects(ctx, s, e, res.Check, o.Subject != nil && !o.Subject.Ours)
	res.Violations = append(res.Violations, effectViolations(res.Effects)...)
	res.Valid = len(res.Violations) == 0

	if err := measure(ctx, e, o.readBackTable(), ops, prefix, since, until, res, s.Kind == KindBench); err != nil {
		o.logf("%s: measures incomplete: %v", s.Name, err)
	}
	if res.Attack != nil {
		// Judged after measure: the service's peak RSS is one of its bounds.
		res.Violations = append(res.Violations, attackViolations(s, res)...)
		res.Valid = len(res.Violations) == 0
	}
	if s.Baseline && o.readBackTable() == nil { // the baseline is our store's
		if err := runBaseline(ctx, s, e, res); err != nil {
			return fmt.Errorf("scenario: baseline: %w", err)
		}
	}
	o.logf("%s: %s", s.Name, verdictLine(res))
	return nil
}

func verdictLine(res *results.Scenario) string {
	c := res.Check
	v := "valid"
	if !res.Valid {
		v = "INVALID: " + strings.Join(res.Violations, "; ")
	}
	var effects []string
	for _, f := range res.Effects {
		effects = append(effects, fmt.Sprintf("%s %d", f.Name, f.Count))
	}
	return fmt.Sprintf("attempted %d, acknowledged %d, lost %d, duplicated %d, unexpected %d, recovered %d, faults %d, effects [%s]: %s",
		c.Attempted, c.Acknowledged, c.Lost, c.Duplicated, c.Unexpected, c.Recovered, len(res.Faults), strings.Join(effects, ", "), v)
}

func newRunID(name string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return name + "-" + hex.EncodeToString(b[:])
}

// startWhat says what the start phase starts.
func startWhat(s *Scenario, o Options) string {
	backend := o.Backend
	if o.Target != "" {
		return "the service at " + o.Target
	}
	if backend == "" {
		backend = BackendLocal
	}
	what := fmt.Sprintf("PostgreSQL, Redis and %d service instance(s) (%s backend)", max(s.Env.Services, 1), backend)
	if o.PlantedBug != "" {
		what += ", planted bug " + o.PlantedBug
	}
	return what
}

// runLoad drives the scenario's load with its faults.
func runLoad(ctx context.Context, s *Scenario, o Options, tr *tracker, e env.Env, hist *history.Recorder, runID string, ready nemesis.ReadyFunc, res *results.Scenario) error {
	src, err := gen.New(sourceConfig(s, runID))
	if err != nil {
		return fmt.Errorf("scenario: events: %w", err)
	}
	plan := nemesis.Plan(nemesisSpecs(s), s.Env.Services, s.Events.Seed)
	m := model(s)
	// The load outlasts the last heal, so every fault happens under load:
	// it runs for its planned duration and at least afterLastHeal past the
	// moment the nemesis is done. Faults run late when heals take long (a
	// container restart), so the end is not known in advance: the load is
	// stopped then, and its Duration is only a cap.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var planned time.Duration
	if len(plan) > 0 && m.Duration > 0 {
		planned = max(m.Duration, nemesis.End(plan)+afterLastHeal)
		m.Duration = planned + nemesis.End(plan) + lateFaultsCap
	}
	shown := m // as the progress lines show it: the planned duration
	if planned > 0 {
		shown.Duration = planned
	}
	var faultsEnd time.Duration
	if len(plan) > 0 {
		faultsEnd = nemesis.End(plan)
		tr.enter(PhaseFaults, "%s with %d fault(s) planned in the first %s", loadWhat(shown), len(plan), faultsEnd.Round(time.Second))
	} else {
		tr.enter(PhaseLoad, "%s", loadWhat(shown))
	}
	start := time.Now()
	faults := make(chan []results.Fault, 1)
	if len(plan) > 0 {
		cl, err := o.client(e.Targets()[0], e)
		if err != nil {
			return err
		}
		nem := &nemesis.Nemesis{Env: e, History: hist, Ready: ready}
		if _, has, err := cl.ReadStats(ctx); err == nil && (has.Queue() || cl.Backlog != nil) {
			nem.Backlog = func(ctx context.Context) (int64, error) {
				st, err := cl.Stats(ctx)
				return st.QueueDepth, err
			}
		}
		go func() {
			fs := nem.Run(ctx, start, plan)
			if planned > 0 {
				stopAt := start.Add(planned)
				if late := time.Now().Add(afterLastHeal); late.After(stopAt) {
					stopAt = late
				}
				t := time.NewTimer(time.Until(stopAt))
				select {
				case <-t.C:
				case <-loadCtx.Done():
				}
				t.Stop()
				stopLoad()
			}
			faults <- fs
		}()
	} else {
		faults <- nil
	}
	_, err = load.Run(loadCtx, o.loadConfig(e, load.Config{
		Targets: e.Targets(), Token: o.Token, Model: m, Source: src, History: hist,
		Progress: progress(tr, PhaseLoad, shown, faultsEnd), IdempotencyHeader: o.idempotencyHeader(s),
	}))
	select {
	case res.Faults = <-faults:
	default:
		tr.enter(PhaseFaults, "load done; waiting for the last fault to heal")
		res.Faults = <-faults
	}
	res.MaxToReady = results.MaxToReady(res.Faults)
	if err != nil {
		return fmt.Errorf("scenario: load: %w", err)
	}
	return nil
}

// loadWhat says what a load model sends, e.g. "open load, 200 req/s for 30s".
func loadWhat(m load.Model) string {
	what := m.Kind + " load"
	switch {
	case m.Kind == load.Open && m.RampTo > 0:
		what += fmt.Sprintf(", %.0f to %.0f req/s", m.Rate, m.RampTo)
	case m.Kind == load.Open:
		what += fmt.Sprintf(", %.0f req/s", m.Rate)
	default:
		what += fmt.Sprintf(", %d users", m.Users)
	}
	if m.Duration > 0 {
		what += " for " + m.Duration.Round(100*time.Millisecond).String()
	} else {
		what += " until every event is sent"
	}
	return what
}

// progress turns the load's progress into statuses of phase, or of phase
// faults while faults are planned (the first faultsEnd of the load).
func progress(tr *tracker, phase string, m load.Model, faultsEnd time.Duration) func(load.Progress) {
	if tr.o.Status == nil {
		return nil
	}
	return func(p load.Progress) {
		phase := phase
		if p.Elapsed < faultsEnd {
			phase = PhaseFaults
		}
		of := ""
		if m.Duration > 0 {
			of = " of " + m.Duration.Round(time.Second).String()
		}
		tr.status(phase, fmt.Sprintf("%.0fs%s: sent %d, ok %d, fail %d, unknown %d, events acked %d",
			p.Elapsed.Seconds(), of, p.Sent, p.OK, p.Fail, p.Info, p.EventsAcked))
	}
}
