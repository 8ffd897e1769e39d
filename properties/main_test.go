package properties

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// full selects the long budgets (CHRONICLE_FULL=1).
var full = os.Getenv("CHRONICLE_FULL") == "1"

// Check budgets: rapid checks per property, bounded and full. rapid divides
// them by 5 under -short; -rapid.checks or RAPID_CHECKS replace them.
var (
	racingChecks  = budget{bounded: 25, full: 200}
	setChecks     = budget{bounded: 25, full: 200}
	badChecks     = budget{bounded: 25, full: 100}
	machineChecks = budget{bounded: 8, full: 50}
)

// State machine steps (rapid's average Repeat length; halved under -short)
// and the time rapid may spend shrinking one failure.
var (
	machineSteps = budget{bounded: 15, full: 20}
	shrinkTime   = map[bool]time.Duration{false: 30 * time.Second, true: 2 * time.Minute}
)

type budget struct{ bounded, full int }

// twice is the budget of a planted-bug run: it stops at the first failure,
// so the larger budget costs time only when a bug goes uncaught.
func (b budget) twice() budget { return budget{2 * b.bounded, 2 * b.full} }

func (b budget) n() int {
	if full {
		return b.full
	}
	return b.bounded
}

// runRoot is the parent of every environment's run folder (logs); it is
// removed when every test passed.
var runRoot string

func TestMain(m *testing.M) {
	flag.Parse()
	configureRapid()
	// A service that makes no progress on a non-empty queue for this long
	// is stuck (only planted bugs do that here); the default 20 s would
	// make every reproduction of such a failure slow.
	client.DrainStall = 8 * time.Second
	var err error
	if runRoot, err = os.MkdirTemp("", "chronicle-properties-"); err != nil {
		fmt.Fprintln(os.Stderr, "properties:", err)
		os.Exit(1)
	}
	code := m.Run()
	closeSharedEnvs()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "properties: goroutines left behind:", err)
			code = 1
		}
	}
	if dir := os.Getenv("CHRONICLE_RESULTS"); dir != "" {
		if ps := outcomes.all(); len(ps) > 0 {
			if err := results.WriteProperties(dir, results.Properties{Header: resultsHeader(), Properties: ps}); err != nil {
				fmt.Fprintln(os.Stderr, "properties: write results:", err)
				code = max(code, 1)
			} else {
				fmt.Printf("properties: wrote %s\n", filepath.Join(dir, results.PropertiesFile))
			}
		}
	}
	if code == 0 {
		os.RemoveAll(runRoot)
	} else {
		fmt.Fprintf(os.Stderr, "properties: service, PostgreSQL and Redis logs kept in %s\n", runRoot)
	}
	os.Exit(code)
}

// checksOverridden is set when the user chose the number of checks
// (-rapid.checks or RAPID_CHECKS): the budgets then do not apply.
var checksOverridden bool

// configureRapid sets rapid's steps, shrink time and fail files unless the
// command line or the environment chose them. Fail files are off: these
// tests replay by seed (rapid prints it), and a fail file would make the
// planted-bug runs replay their own failures.
func configureRapid() {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	chosen := func(name, envVar string) bool {
		_, ok := os.LookupEnv(envVar)
		return set[name] || ok
	}
	checksOverridden = chosen("rapid.checks", "RAPID_CHECKS")
	defaults := []struct{ name, envVar, value string }{
		{"rapid.steps", "RAPID_STEPS", strconv.Itoa(machineSteps.n())},
		{"rapid.shrinktime", "RAPID_SHRINKTIME", shrinkTime[full].String()},
		{"rapid.nofailfile", "RAPID_NOFAILFILE", "true"},
	}
	for _, d := range defaults {
		if !chosen(d.name, d.envVar) {
			if err := flag.Set(d.name, d.value); err != nil {
				panic(err)
			}
		}
	}
}

// checksMu serialises setting -rapid.checks with rapid reading it: rapid
// reads it once, before the first check, so the lock is held from the Set
// to the first call of the property.
var checksMu sync.Mutex

// runStats counts the calls of a property in one rapid.Check and keeps the
// smallest failing call's log.
type runStats struct {
	// progress receives a plain line on how far the checks are (the
	// test's Logf: go test -v streams it); set by newRunStats.
	progress func(format string, args ...any)

	mu        sync.Mutex
	calls     int       // every call: checks, then reproduction and shrinking
	firstFail int       // the call that failed first (0: none)
	total     int       // checks rapid runs unless one fails
	start     time.Time // of the first call
	reported  time.Time // when progress was last reported

	lines []string // the current call's log (see logf)
	// smallest is the log of the failing call with the fewest steps (the
	// latest among equals): rapid's minimised counterexample, as it ran.
	// rapid replays the minimised case once more for its own report, but
	// against a real environment a timing-dependent failure may not recur
	// in that replay; this is the run that did fail.
	smallest      []string
	smallestSteps int
}

// active maps the *rapid.T of a running call to its runStats, for logf.
var active sync.Map

// logf logs to t and to the current call's log.
func logf(t *rapid.T, format string, args ...any) {
	t.Helper()
	t.Logf(format, args...)
	if st, ok := active.Load(t); ok {
		s := st.(*runStats)
		s.mu.Lock()
		s.lines = append(s.lines, fmt.Sprintf(format, args...))
		s.mu.Unlock()
	}
}

// newRunStats returns the runStats of a property run by t, reporting its
// progress through t.Logf.
func newRunStats(t *testing.T) *runStats { return &runStats{progress: t.Logf} }

// progressEvery is how often a property's progress is reported.
const progressEvery = 10 * time.Second

// report logs how far the run is: at the first call, then at most once per
// progressEvery (s.mu held).
func (s *runStats) report(call int) {
	if s.progress == nil {
		return
	}
	now := time.Now()
	if call == 1 {
		s.start = now
	} else if now.Sub(s.reported) < progressEvery {
		return
	}
	s.reported = now
	elapsed := now.Sub(s.start).Round(time.Second)
	switch {
	case s.firstFail > 0:
		s.progress("progress: failed at check %d; shrinking the failure (call %d, %s)", s.firstFail, call, elapsed)
	case call == 1:
		s.progress("progress: check 1/%d", s.total)
	default:
		s.progress("progress: check %d/%d (%s; about %s to go)", call, s.total, elapsed,
			(elapsed / time.Duration(call-1) * time.Duration(s.total-call+1)).Round(time.Second))
	}
}

// counterexample returns the smallest failing call's example (see
// example) and its number of steps.
func (s *runStats) counterexample() ([]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ex, steps, _ := example(s.smallest)
	return ex, steps
}

// example picks from a call's log the lines that say what the check did
// (a race's plan, each step) and what it found (violations), the number of
// steps, and whether a violation was found.
func example(lines []string) (ex []string, steps int, violation bool) {
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, stepPrefix):
			steps++
			ex = append(ex, l)
		case strings.HasPrefix(l, violationPrefix):
			violation = true
			ex = append(ex, l)
		case strings.HasPrefix(l, racePrefix):
			ex = append(ex, l)
		}
	}
	return ex, steps, violation
}

func (s *runStats) endCall(call int, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !failed {
		return
	}
	if s.firstFail == 0 {
		s.firstFail = call
	}
	_, steps, violation := example(s.lines)
	if !violation {
		return // the harness failed (e.g. an environment left broken), not the property
	}
	if s.smallest == nil || steps <= s.smallestSteps {
		s.smallest, s.smallestSteps = s.lines, steps
	}
}

func (s *runStats) checksToFailure() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstFail > 0 {
		return s.firstFail
	}
	return s.calls
}

func (s *runStats) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstFail > 0
}

// check runs prop with rapid for b's number of checks (unless overridden)
// and counts its calls in st.
func check(tb rapid.TB, b budget, st *runStats, prop func(*rapid.T)) {
	tb.Helper()
	checksMu.Lock()
	var once sync.Once
	unlock := func() { once.Do(checksMu.Unlock) }
	defer unlock()
	if !checksOverridden {
		if err := flag.Set("rapid.checks", strconv.Itoa(b.n())); err != nil {
			tb.Fatalf("set -rapid.checks: %v", err)
		}
	}
	total, _ := strconv.Atoi(flag.Lookup("rapid.checks").Value.String())
	if testing.Short() {
		total /= 5 // as rapid does
	}
	st.mu.Lock()
	st.total = max(total, 1)
	st.mu.Unlock()
	rapid.Check(tb, func(t *rapid.T) {
		unlock()
		st.mu.Lock()
		st.calls++
		call := st.calls
		st.lines = nil
		st.report(call)
		st.mu.Unlock()
		active.Store(t, st)
		defer func() {
			active.Delete(t)
			st.endCall(call, t.Failed())
		}()
		prop(t)
	})
}

// outcomes collects the outcomes for CHRONICLE_RESULTS.
var outcomes resultSet

type resultSet struct {
	mu sync.Mutex
	ps []results.Property
}

func (r *resultSet) add(p results.Property) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ps = append(r.ps, p)
}

func (r *resultSet) all() []results.Property {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]results.Property(nil), r.ps...)
}

// recordClean records a clean run of property name (deferred by the test)
// and, when it failed, logs the smallest failing run: rapid's replay of
// the minimised case, printed above, may pass when the failure depends on
// timing.
func recordClean(t *testing.T, name string, st *runStats) {
	p := results.Property{Property: name, Checks: st.checksToFailure(), Failed: t.Failed()}
	if lines, steps := st.counterexample(); p.Failed && len(lines) > 0 {
		p.ShrunkSteps, p.Example = steps, strings.Join(lines, "\n")
		t.Logf("smallest failing run (%d steps):\n%s", steps, p.Example)
	}
	outcomes.add(p)
}

// resultsHeader is the results' header: where they ran, the versions and
// settings of the shared environments (the planted-bug ones add the bug).
func resultsHeader() results.Header {
	cmd := "go test ./properties/"
	if full {
		cmd = "CHRONICLE_FULL=1 " + cmd
	}
	h := results.CollectHeader(cmd)
	h.Backend = "local"
	h.Settings = map[string]string{}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for name, s := range shared.envs {
		if s.env == nil {
			continue
		}
		info := s.env.Info()
		h.Postgres, h.Redis = info.PostgresVersion, info.RedisVersion
		var kv []string
		for k, v := range info.Settings {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		h.Settings[name] = strings.Join(append(kv, "redis "+info.RedisPersistence), " ")
	}
	return h
}

// --- shared environments ---

// Settings of the environment shared by the request-level properties
// (racing duplicates, set semantics, bad input): four workers taking one
// entry at a time, so that copies race in concurrent transactions, and small request
// limits so that 413 is cheap to provoke.
const (
	maxBatch     = 50
	maxBodyBytes = 128 << 10
)

var apiSettings = map[string]string{
	"WORKER_COUNT":   "4",
	"BATCH_SIZE":     "1",
	"MAX_BATCH":      strconv.Itoa(maxBatch),
	"MAX_BODY_BYTES": strconv.Itoa(maxBodyBytes),
}

// Settings of the state machine's environment: two workers with small
// batches (a kill lands mid-batch) and a short CLAIM_IDLE, so that an entry
// held by a stuck worker is claimed and applied twice (the ledger's job).
var machineSettings = map[string]string{
	"WORKER_COUNT": "2",
	"BATCH_SIZE":   "4",
	"CLAIM_IDLE":   "200ms",
}

// machineFsync is Redis's appendfsync in the state machine's environment:
// "always" unless CHRONICLE_REDIS_FSYNC says otherwise.
//
// With "everysec" (the contract's default; the project now defaults to "always") this property finds acknowledged events lost
// when Redis is killed shortly after a PostgreSQL restart: while its
// background fsync of the AOF is slow (the disk is busy with PostgreSQL's
// recovery), Redis postpones the AOF write() by up to 2 s but still
// answers the XADD, so a SIGKILL in that window loses acknowledged
// entries. Guarantee 1 of the contract does not hold under everysec until
// the service waits for the AOF (WAITAOF, Redis >= 7.2) or the deployment
// uses "always"; CHRONICLE_REDIS_FSYNC=everysec reproduces the loss.
var machineFsync = func() string {
	if v := os.Getenv("CHRONICLE_REDIS_FSYNC"); v != "" {
		return v
	}
	return "always"
}()

type sharedEnv struct {
	once sync.Once
	env  *env.Local
	err  error
	// mu is held by the test using the environment: stats deltas need it
	// to themselves.
	mu sync.Mutex
}

var shared = struct {
	mu   sync.Mutex
	envs map[string]*sharedEnv
}{envs: map[string]*sharedEnv{}}

// useSharedEnv returns the environment called name (started on first use
// with o) and holds it for t until t ends.
func useSharedEnv(t *testing.T, name string, o env.LocalOptions) *env.Local {
	t.Helper()
	shared.mu.Lock()
	s := shared.envs[name]
	if s == nil {
		s = &sharedEnv{}
		shared.envs[name] = s
	}
	shared.mu.Unlock()
	s.mu.Lock()
	t.Cleanup(s.mu.Unlock)
	s.once.Do(func() {
		s.env, s.err = startEnv(t, name, o)
	})
	if s.err != nil {
		t.Fatalf("start environment %s: %v", name, s.err)
	}
	return s.env
}

func closeSharedEnvs() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for name, s := range shared.envs {
		if s.env != nil {
			if err := s.env.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "properties: close environment %s: %v\n", name, err)
			}
		}
	}
}

// startEnv starts one service instance with PostgreSQL and Redis, its logs
// in runRoot/name, and says so on t (the first start also builds the
// service binary).
func startEnv(t *testing.T, name string, o env.LocalOptions) (*env.Local, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	o.Services = 1
	o.RunDir = filepath.Join(runRoot, name)
	t.Logf("progress: starting environment %s: PostgreSQL, Redis and the service (the first one builds the service: about a minute)", name)
	start := time.Now()
	e, err := env.StartLocal(ctx, o)
	if err == nil {
		t.Logf("progress: environment %s started in %s", name, time.Since(start).Round(100*time.Millisecond))
	}
	return e, err
}
