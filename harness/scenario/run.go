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
	// Peers: the comparison of subjects (`make peers`). A rate search
	// whose every step missed its bound is measured at its first step
	// instead of failing the run.
	Peers bool
	// Logf receives progress lines; nil is quiet.
	Logf func(format string, args ...any)
}

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
	res.RunDir = dir
	if o.Subject != nil {
		res.Subject = o.Subject.Name
		if gap := o.Subject.Gap(s.Events.PerRequest); gap != "" {
			err = fmt.Errorf("scenario %s, subject %s: %w: %s", s.Name, o.Subject.Name, ErrGap, gap)
		}
	}
	if err == nil {
		err = run(ctx, s, o, &res)
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

func runDir(o Options, name string) (string, error) {
	parent := o.RunsDir
	if parent == "" {
		parent = "runs"
	}
	suffix := name
	if o.PlantedBug != "" {
		suffix += "-bug-" + o.PlantedBug
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("scenario: create runs folder: %w", err)
	}
	base := filepath.Join(parent, time.Now().UTC().Format("20060102-150405")+"-"+suffix)
	dir := base
	for n := 2; ; n++ { // two runs in the same second get their own folders
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			break
		}
		if !os.IsExist(err) {
			return "", fmt.Errorf("scenario: create run folder: %w", err)
		}
		dir = fmt.Sprintf("%s-%d", base, n)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir, nil
	}
	return abs, nil
}

// run does the work of Run; res is filled as it goes.
func run(ctx context.Context, s *Scenario, o Options, res *results.Scenario) error {
	e, err := startEnv(ctx, s, o, res.RunDir)
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
	hist, err := history.NewRecorder(filepath.Join(res.RunDir, "history.jsonl"))
	if err != nil {
		return err
	}
	defer hist.Close()

	targets := e.Targets()
	cl, err := o.client(targets[0], e)
	if err != nil {
		return err
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
	runID := newRunID(s.Name)
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

	// The measured window and namespace: the whole run, or a search's
	// final (or best) part.
	since, until, prefix := time.Now(), time.Time{}, runID
	switch s.Kind {
	case KindSearch:
		if since, until, prefix, err = runSearch(ctx, s, o, e, hist, runID, res); err != nil {
			return err
		}
	default:
		if err := runLoad(ctx, s, o, e, hist, runID, ready, res); err != nil {
			return err
		}
	}

	// Heal is done by the nemesis; drain, read back, check.
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

// runLoad drives the scenario's load with its faults.
func runLoad(ctx context.Context, s *Scenario, o Options, e env.Env, hist *history.Recorder, runID string, ready nemesis.ReadyFunc, res *results.Scenario) error {
	src, err := gen.New(sourceConfig(s, runID))
	if err != nil {
		return fmt.Errorf("scenario: events: %w", err)
	}
	plan := nemesis.Plan(nemesisSpecs(s), s.Env.Services, s.Events.Seed)
	m := model(s)
	if len(plan) > 0 && m.Duration > 0 {
		// The load outlasts the last heal, so every fault happens under load.
		m.Duration = max(m.Duration, nemesis.End(plan)+3*time.Second)
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
		go func() { faults <- nem.Run(ctx, start, plan) }()
	} else {
		faults <- nil
	}
	_, err = load.Run(ctx, o.loadConfig(load.Config{
		Targets: e.Targets(), Token: o.Token, Model: m, Source: src, History: hist,
		Progress: progress(o, s.Name),
	}))
	res.Faults = <-faults
	res.MaxToReady = results.MaxToReady(res.Faults)
	if err != nil {
		return fmt.Errorf("scenario: load: %w", err)
	}
	return nil
}

func progress(o Options, name string) func(load.Progress) {
	if o.Logf == nil {
		return nil
	}
	return func(p load.Progress) {
		o.Logf("%s: %4.0fs sent %d ok %d fail %d unknown %d events acked %d",
			name, p.Elapsed.Seconds(), p.Sent, p.OK, p.Fail, p.Info, p.EventsAcked)
	}
}
