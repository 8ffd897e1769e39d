package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/subject"
	"github.com/chronicleweaver/chronicleweaver/internal/proc"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// LocalOptions configures StartLocal.
type LocalOptions struct {
	Services int               // service instances (>= 1)
	Settings map[string]string // extra service environment (WORKER_COUNT, BATCH_SIZE, QUEUE_MAX_LEN, CLAIM_IDLE, ...)
	// Durable runs PostgreSQL with fsync on (benchmarks). Off (fault tests)
	// it runs with fsync off but synchronous_commit on, which is still safe
	// against process kills: a commit has reached the kernel when it returns.
	Durable     bool
	AppendFsync string // Redis appendfsync: always (default), everysec or no
	NoAOF       bool   // planted bug: Redis without AOF (nor snapshots)
	// Binary is the service binary; "" builds ./service/cmd/chronicleweaver
	// of this module with `go build` into RunDir, once per process and set
	// of BuildTags.
	Binary    string
	BuildTags []string // e.g. ["plantedbugs"]
	// RunDir receives service-N.log (appended across restarts) and, at
	// Close, postgres.log and redis.log. Created if missing; "" makes a
	// temporary one (see Local.RunDir).
	RunDir string
	// Proxy routes the services' connections to Redis and PostgreSQL
	// through in-process TCP proxies, which SetLink needs.
	Proxy bool
	Logf  func(format string, args ...any) // lifecycle messages; may be nil

	// Subject is what a service instance is (harness/subject): nil or ours
	// is this module's service (Binary, or a build). A foreign subject runs
	// its run.command in SourceDir/run.dir, with the environment contract
	// (APP_HOST, APP_PORT, DATABASE_URL, REDIS_URL, WORKER_COUNT,
	// INSTANCE_ID) and its run.env; every fault applies to it as to ours.
	Subject *subject.Subject
	// Command, when set, is what each instance runs instead (the command
	// line of --service-cmd, ${VAR} of the contract expanded per instance),
	// under Subject's API mapping.
	Command string
	// SourceDir is the checkout a foreign subject's run.dir is relative to
	// (default: the working directory).
	SourceDir string

	// RedisDisk, when > 0, puts Redis's working directory (its AOF) on a tmpfs of that
	// many bytes, and PostgresDisk PostgreSQL's data directory (not its WAL
	// nor its log), for FillDisk and FreeDisk. Mounting needs root: when it
	// fails, StartLocal fails with an error wrapping ErrCannotMount. The
	// mounts are released by Close.
	RedisDisk    int64
	PostgresDisk int64
}

// foreign reports whether the instances run a command rather than this
// module's binary.
func (o LocalOptions) foreign() bool {
	return o.Command != "" || (o.Subject != nil && !o.Subject.Ours)
}

// ours reports whether the instances are this module's service (its
// settings are validated by service/config).
func (o LocalOptions) ours() bool { return o.Subject == nil || o.Subject.Ours }

// Local is the local backend: PostgreSQL and Redis started by devenv, the
// service instances as child processes (each in its own process group; see
// instance). Every process goes through internal/proc, and every port
// comes from its one registry. Its methods are safe for concurrent use;
// operations on one node are serialised.
//
// The backend is cut by concern: local.go starts, describes and closes it,
// local_faults.go injects faults and measures, instance.go runs one service
// instance, build.go builds the service binary.
type Local struct {
	opts   LocalOptions
	runDir string
	// argv is the command every service instance runs: our binary
	// (LocalOptions.Binary, or a build of this module) and its arguments.
	argv    []string
	pg      *devenv.Postgres
	redis   *devenv.Redis
	pgProxy *Proxy // nil unless opts.Proxy
	rdProxy *Proxy
	// redisDisk and pgDisk are the small filesystems of LocalOptions
	// RedisDisk and PostgresDisk (nil: none); each is set once, before
	// its server starts.
	redisDisk, pgDisk *disk
	dbURL             string // direct, for the checker
	svcDBURL          string // what the services use (through the proxy when on)
	svcRdURL          string
	services          []*instance
	shutdown          time.Duration // the services' SHUTDOWN_TIMEOUT
	info              Info

	lifetime
}

var _ Env = (*Local)(nil)

// defaultWait bounds waits whose context has no deadline.
const defaultWait = 60 * time.Second

// closeGrace is how long Close lets a service drain after SIGTERM.
const closeGrace = 5 * time.Second

// chronicleDB is the service's database.
const chronicleDB = "chronicle"

// StartLocal starts PostgreSQL, Redis and o.Services service instances and
// returns once every instance answers GET /ready with 200. On failure
// everything started is stopped again. The caller must Close the result.
func StartLocal(ctx context.Context, o LocalOptions) (_ *Local, err error) {
	if err := checkServices("LocalOptions", "local", o.Services, o.Settings); err != nil {
		return nil, err
	}
	if o.Binary != "" && !o.foreign() {
		if _, err := serviceBinary(ctx, o.Binary, nil, "", nil); err != nil {
			return nil, fmt.Errorf("env: %w", err)
		}
	}
	if o.Subject != nil && len(o.Subject.Processes) > 0 {
		return nil, fmt.Errorf("env: subject %s is several processes: not supported by the local backend yet", o.Subject.Name)
	}
	if o.foreign() {
		if o.Command == "" && o.Subject.Run.Command == "" {
			return nil, fmt.Errorf("env: subject %s has no run.command", o.Subject.Name)
		}
		if _, err := subject.Argv(o.command(), nil); err != nil {
			return nil, fmt.Errorf("env: service command: %w", err)
		}
	}
	runDir, err := makeRunDir(o.RunDir)
	if err != nil {
		return nil, err
	}

	l := &Local{opts: o, runDir: runDir}
	if o.RedisDisk < 0 || o.PostgresDisk < 0 {
		return nil, fmt.Errorf("env: LocalOptions.RedisDisk %d, PostgresDisk %d: must be >= 0", o.RedisDisk, o.PostgresDisk)
	}
	var prepareAOF func(string) error
	if o.RedisDisk > 0 {
		l.redisDisk = &disk{node: Redis, size: o.RedisDisk}
		prepareAOF = func(path string) error { return l.redisDisk.mount(path, os.Geteuid(), os.Getegid()) }
	}
	var prepareData func(string, int, int) error
	if o.PostgresDisk > 0 {
		l.pgDisk = &disk{node: Postgres, size: o.PostgresDisk}
		prepareData = l.pgDisk.mount
	}
	l.begin(o.Logf)
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	ctx, cancel := l.startCtx(ctx, 3*defaultWait)
	defer cancel()

	// The build and the two servers start concurrently.
	var (
		wg                    sync.WaitGroup
		binErr, pgErr, rdbErr error
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if o.foreign() {
			return
		}
		var binary string
		binary, binErr = serviceBinary(ctx, o.Binary, o.BuildTags, runDir, o.Logf)
		l.argv = []string{binary}
	}()
	go func() {
		defer wg.Done()
		settings := map[string]string{}
		if !o.Durable {
			settings["synchronous_commit"] = "on" // see LocalOptions.Durable
		}
		l.pg, pgErr = devenv.StartPostgres(ctx, devenv.PostgresOptions{Durable: o.Durable, Settings: settings, Logf: o.Logf, PrepareDataDir: prepareData})
	}()
	go func() {
		defer wg.Done()
		l.redis, rdbErr = devenv.StartRedis(ctx, devenv.RedisOptions{AppendFsync: o.AppendFsync, NoAOF: o.NoAOF, Logf: o.Logf, PrepareDataDir: prepareAOF})
	}()
	wg.Wait()
	if err := errors.Join(binErr, pgErr, rdbErr); err != nil {
		return nil, fmt.Errorf("env: start: %w", err)
	}
	if l.dbURL, err = l.pg.CreateDatabase(ctx, chronicleDB); err != nil {
		return nil, fmt.Errorf("env: %w", err)
	}
	l.svcDBURL, l.svcRdURL = l.dbURL, l.redis.URL()
	if o.Proxy {
		if l.pgProxy, err = NewProxy(fmt.Sprintf("127.0.0.1:%d", l.pg.Port())); err != nil {
			return nil, err
		}
		if l.rdProxy, err = NewProxy(l.redis.Addr()); err != nil {
			return nil, err
		}
		l.svcDBURL = fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", devenv.PostgresSuperuser, l.pgProxy.Addr(), chronicleDB)
		l.svcRdURL = "redis://" + l.rdProxy.Addr() + "/0"
	}

	ports, err := proc.ReservePorts(o.Services)
	if err != nil {
		return nil, fmt.Errorf("env: %w", err)
	}
	ready := readyPath(o.Subject)
	for i := range o.Services {
		name := ServiceNode(i)
		l.services = append(l.services, &instance{name: name, port: ports[i], logPath: filepath.Join(runDir, name+".log"), ready: ready})
	}
	if o.ours() {
		// Validate the settings as the service will, and learn
		// SHUTDOWN_TIMEOUT. (The planted-bug switch is checked by the
		// service binary itself, which is built with the tag; this process
		// is not.)
		lookup := envLookup(l.serviceEnv(l.services[0]))
		cfg, err := config.FromEnv(func(k string) string {
			if k == planted.EnvVar {
				return ""
			}
			return lookup(k)
		})
		if err != nil {
			return nil, fmt.Errorf("env: service settings: %w", err)
		}
		l.shutdown = cfg.ShutdownTime
	} else {
		l.shutdown = o.Subject.Run.ShutdownTimeout.D()
	}
	l.info = l.makeInfo()

	errs := make([]error, len(l.services))
	for i, s := range l.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.opMu.Lock()
			defer s.opMu.Unlock()
			errs[i] = l.startService(ctx, s, true)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return l, nil
}

// Targets are the service base URLs, "http://127.0.0.1:PORT", in node order.
func (l *Local) Targets() []string {
	t := make([]string, len(l.services))
	for i, s := range l.services {
		t[i] = s.url()
	}
	return t
}

// DatabaseURL is the service database's URL, straight to PostgreSQL (never
// through the fault proxy).
func (l *Local) DatabaseURL() string { return l.dbURL }

// RedisURL is Redis's URL, straight to the server (never through the proxy).
func (l *Local) RedisURL() string { return l.redis.URL() }

// RunDir is the folder receiving the logs.
func (l *Local) RunDir() string { return l.runDir }

// Nodes lists service-0..N-1, redis and postgres.
func (l *Local) Nodes() []string {
	nodes := make([]string, 0, len(l.services)+2)
	for _, s := range l.services {
		nodes = append(nodes, s.name)
	}
	return append(nodes, Redis, Postgres)
}

// Info describes the environment.
func (l *Local) Info() Info { return l.info.clone() }

func (l *Local) makeInfo() Info {
	persistence := "aof " + l.opts.AppendFsync
	if l.opts.AppendFsync == "" {
		persistence = "aof always"
	}
	if l.opts.NoAOF {
		persistence = "none"
	}
	return Info{
		Backend:          "local",
		Services:         len(l.services),
		PostgresVersion:  l.pg.Version(),
		RedisVersion:     l.redis.Version(),
		Settings:         infoSettings(l.opts.Settings),
		PostgresDurable:  l.opts.Durable,
		RedisPersistence: persistence,
		Proxied:          l.opts.Proxy,
	}
}

// startService starts s running l's service command and waits until it is
// ready (see instance.start). The caller holds s.opMu.
func (l *Local) startService(ctx context.Context, s *instance, first bool) error {
	return s.start(ctx, func() proc.Command { return l.command(s) }, first, l.logf)
}

// command is what service instance s runs: l.argv with s's environment, in
// RunDir; or a foreign command (LocalOptions.Command, the subject's
// run.command) with ${VAR} of s's contract expanded, in the subject's
// folder of the checkout.
func (l *Local) command(s *instance) proc.Command {
	if !l.opts.foreign() {
		return proc.Command{Path: l.argv[0], Args: l.argv[1:], Env: l.serviceEnv(s), Dir: l.runDir}
	}
	env := l.serviceEnv(s)
	vars := contractVars(env)
	argv, _ := subject.Argv(l.opts.command(), vars) // checked by StartLocal
	dir := l.opts.SourceDir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	if l.opts.Subject != nil && l.opts.Subject.Run.Dir != "" && l.opts.Command == "" {
		dir = filepath.Join(dir, l.opts.Subject.Run.Dir)
	}
	return proc.Command{Path: argv[0], Args: argv[1:], Env: env, Dir: dir}
}

// command is the foreign command line: Command, else the subject's.
func (o LocalOptions) command() string {
	if o.Command != "" {
		return o.Command
	}
	return o.Subject.Run.Command
}

// contractVars picks the environment contract's variables out of env.
func contractVars(env []string) map[string]string {
	lookup := envLookup(env)
	vars := map[string]string{}
	for _, k := range subject.Vars {
		vars[k] = lookup(k)
	}
	return vars
}

// readyPath is the readiness path of a subject's instances ("auto": /ready,
// or /health where /ready is 404).
func readyPath(s *subject.Subject) string {
	if s == nil {
		return "/ready"
	}
	return s.API.Ready
}

// serviceEnv is the complete environment of service s: a few variables of
// ours (PATH, HOME, Go runtime knobs), the connection settings, then
// LOG_LEVEL=info and the Settings.
func (l *Local) serviceEnv(s *instance) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL", "GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG", "GOTRACEBACK"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env,
		"APP_PORT="+strconv.Itoa(s.port),
		"DATABASE_URL="+l.svcDBURL,
		"REDIS_URL="+l.svcRdURL,
		"INSTANCE_ID="+s.name,
	)
	if l.opts.foreign() {
		// The rest of the contract, for a program that is not ours.
		env = append(env, "APP_HOST=127.0.0.1", "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
		if _, ok := l.opts.Settings["WORKER_COUNT"]; !ok {
			env = append(env, "WORKER_COUNT="+defaultWorkerCount)
		}
	}
	if _, ok := l.opts.Settings["LOG_LEVEL"]; !ok {
		env = append(env, "LOG_LEVEL=info")
	}
	keys := make([]string, 0, len(l.opts.Settings))
	for k := range l.opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+l.opts.Settings[k])
	}
	if l.opts.Subject != nil && l.opts.foreign() {
		env = append(env, l.opts.Subject.Environment(contractVars(env))...)
	}
	return env
}

// defaultWorkerCount is the contract's WORKER_COUNT when a scenario sets none.
const defaultWorkerCount = "4"

func envLookup(env []string) func(string) string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// --- close ---

// Close stops the services (SIGTERM, SIGKILL after 5 s), the proxies,
// Redis and PostgreSQL, and leaves every log in RunDir (postgres.log and
// redis.log are copied there, as devenv removes its directories). It is
// idempotent.
func (l *Local) Close() error { return l.closeOnce(l.close) }

func (l *Local) close() error {
	l.cancel()
	var wg sync.WaitGroup
	for _, s := range l.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.opMu.Lock()
			defer s.opMu.Unlock()
			if p := s.running(); p != nil {
				if err := p.Terminate(context.Background(), syscall.SIGTERM, closeGrace); err != nil {
					l.logf("env: close %s: %v", s.name, err)
				} else if !p.State().Success() {
					l.logf("env: close %s: %s after SIGTERM", s.name, p.State())
				}
			}
			proc.ReleasePorts(s.port)
		}()
	}
	wg.Wait()

	var errs []error
	for _, p := range []*Proxy{l.pgProxy, l.rdProxy} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	// Stop the servers gracefully so that their logs are complete, copy the
	// logs, then let devenv remove the directories.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if l.redis != nil {
		if err := l.redis.Stop(ctx); err != nil {
			l.logf("env: close: %v", err)
		}
		errs = append(errs, copyFile(l.redis.LogPath(), filepath.Join(l.runDir, "redis.log")))
		errs = append(errs, l.redisDisk.release(), l.redis.Close())
	}
	errs = append(errs, l.redisDisk.release()) // also when Redis did not start
	if l.pg != nil {
		if err := l.pg.Stop(ctx); err != nil {
			l.logf("env: close: %v", err)
		}
		errs = append(errs, copyFile(l.pg.LogPath(), filepath.Join(l.runDir, "postgres.log")))
		errs = append(errs, l.pgDisk.release(), l.pg.Close())
	}
	errs = append(errs, l.pgDisk.release()) // also when PostgreSQL did not start
	return errors.Join(errs...)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("env: keep log: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("env: keep log: %w", err)
	}
	return nil
}
