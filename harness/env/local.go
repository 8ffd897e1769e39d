package env

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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
}

// Local is the local backend: PostgreSQL and Redis started by devenv, the
// service instances as child processes (each in its own process group).
// Its methods are safe for concurrent use; operations on one node are
// serialised.
type Local struct {
	opts     LocalOptions
	runDir   string
	binary   string
	pg       *devenv.Postgres
	redis    *devenv.Redis
	pgProxy  *Proxy // nil unless opts.Proxy
	rdProxy  *Proxy
	dbURL    string // direct, for the checker
	svcDBURL string // what the services use (through the proxy when on)
	svcRdURL string
	services []*service
	shutdown time.Duration // the services' SHUTDOWN_TIMEOUT
	info     Info

	lifetime
}

var _ Env = (*Local)(nil)

// service is one service instance.
type service struct {
	name    string
	port    int // fixed after StartLocal; restarts reuse it
	logPath string

	opMu sync.Mutex // serialises start, kill, terminate, restart

	mu      sync.Mutex // guards the fields below; written by the reaper too
	proc    *svcProc   // current or last lifetime
	cpuDone float64    // CPU seconds of the lifetimes that ended
	peakRSS int64      // bytes, max over lifetimes
}

// svcProc is one lifetime of a service process. A reaper goroutine waits
// for it, adds its resource usage to the service and closes done.
type svcProc struct {
	pid     int
	offset  int64 // size of the log when it started
	done    chan struct{}
	state   *os.ProcessState // set before done is closed
	lastCPU float64          // last /proc reading, guarded by service.mu
}

func (p *svcProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

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
	if o.Binary != "" {
		if _, err := serviceBinary(ctx, o.Binary, nil, "", nil); err != nil {
			return nil, fmt.Errorf("env: %w", err)
		}
	}
	runDir, err := makeRunDir(o.RunDir)
	if err != nil {
		return nil, err
	}

	l := &Local{opts: o, runDir: runDir}
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
		l.binary, binErr = serviceBinary(ctx, o.Binary, o.BuildTags, runDir, o.Logf)
	}()
	go func() {
		defer wg.Done()
		settings := map[string]string{}
		if !o.Durable {
			settings["synchronous_commit"] = "on" // see LocalOptions.Durable
		}
		l.pg, pgErr = devenv.StartPostgres(ctx, devenv.PostgresOptions{Durable: o.Durable, Settings: settings, Logf: o.Logf})
	}()
	go func() {
		defer wg.Done()
		l.redis, rdbErr = devenv.StartRedis(ctx, devenv.RedisOptions{AppendFsync: o.AppendFsync, NoAOF: o.NoAOF, Logf: o.Logf})
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

	ports, err := reservePorts(o.Services)
	if err != nil {
		return nil, err
	}
	for i := range o.Services {
		name := ServiceNode(i)
		l.services = append(l.services, &service{name: name, port: ports[i], logPath: filepath.Join(runDir, name+".log")})
	}
	// Validate the settings as the service will, and learn SHUTDOWN_TIMEOUT.
	// (The planted-bug switch is checked by the service binary itself, which
	// is built with the tag; this process is not.)
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

func (s *service) url() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

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

// serviceEnv is the complete environment of service s: a few variables of
// ours (PATH, HOME, Go runtime knobs), the connection settings, then
// LOG_LEVEL=info and the Settings.
func (l *Local) serviceEnv(s *service) []string {
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
	return env
}

func envLookup(env []string) func(string) string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// --- node dispatch ---

func (l *Local) svc(node string) *service {
	for _, s := range l.services {
		if s.name == node {
			return s
		}
	}
	return nil
}

func (l *Local) unknown(node string) error { return unknownNode(node, l.Nodes()) }

var errClosed = errors.New("env: the environment is closed")

// onNode runs operation op on node, with ctx also cancelled by Close: redis
// or pg on Redis or PostgreSQL (their errors wrapped with op and the node),
// svc on a service instance, holding its opMu.
func (l *Local) onNode(ctx context.Context, node, op string, redis, pg func(context.Context) error,
	svc func(context.Context, *service) error) error {
	if l.ctx.Err() != nil {
		return errClosed
	}
	ctx, cancel := l.opCtx(ctx)
	defer cancel()
	switch node {
	case Redis:
		return wrapNode(node, op, redis(ctx))
	case Postgres:
		return wrapNode(node, op, pg(ctx))
	}
	s := l.svc(node)
	if s == nil {
		return l.unknown(node)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	return svc(ctx, s)
}

// Kill: SIGKILL to a service's process group (then reaped), SIGKILL to
// Redis, an immediate shutdown (no checkpoint) of PostgreSQL. Killing a
// stopped node is a no-op.
func (l *Local) Kill(ctx context.Context, node string) error {
	return l.onNode(ctx, node, "kill",
		func(context.Context) error { return l.redis.Kill() },
		l.pg.StopImmediate,
		func(ctx context.Context, s *service) error {
			if p := s.current(); p != nil && !p.exited() {
				if err := killProc(ctx, p); err != nil {
					return wrapNode(node, "kill", err)
				}
				l.logf("env: %s killed (pid %d)", node, p.pid)
			}
			return nil
		})
}

// Terminate stops a node gracefully and waits for it: SIGTERM to a service
// (an error if it does not exit 0 within SHUTDOWN_TIMEOUT + 5 s; it is then
// killed), a graceful stop of Redis, a fast shutdown of PostgreSQL.
func (l *Local) Terminate(ctx context.Context, node string) error {
	return l.onNode(ctx, node, "terminate", l.redis.Stop, l.pg.Stop,
		func(ctx context.Context, s *service) error {
			p := s.current()
			if p == nil || p.exited() {
				return nil
			}
			limit := l.shutdown + 5*time.Second
			start := time.Now()
			if err := terminateProc(ctx, p, limit); err != nil {
				return fmt.Errorf("env: terminate %s: %w%s", node, err, tail(s.logPath, p.offset))
			}
			if !p.state.Success() {
				return fmt.Errorf("env: terminate %s: %s after SIGTERM (exit code %d)%s", node, p.state, p.state.ExitCode(), tail(s.logPath, p.offset))
			}
			l.logf("env: %s terminated in %v", node, time.Since(start).Round(time.Millisecond))
			return nil
		})
}

// Restart starts a node again (killing it first if it runs) and returns
// once it is ready: a service answers /ready with 200, Redis has loaded its
// AOF, PostgreSQL accepts connections.
func (l *Local) Restart(ctx context.Context, node string) error {
	return l.onNode(ctx, node, "restart",
		func(ctx context.Context) error {
			if l.redis.PID() != 0 {
				if err := l.redis.Kill(); err != nil {
					return err
				}
			}
			return l.redis.Start(ctx)
		},
		func(ctx context.Context) error {
			if l.pg.PID() != 0 {
				if err := l.pg.StopImmediate(ctx); err != nil {
					return err
				}
			}
			return l.pg.Start(ctx)
		},
		func(ctx context.Context, s *service) error {
			if p := s.current(); p != nil && !p.exited() {
				if err := killProc(ctx, p); err != nil {
					return wrapNode(node, "restart", err)
				}
			}
			return l.startService(ctx, s, false)
		})
}

// Pause freezes a node with SIGSTOP (a service's process group; devenv's
// Pause for Redis and PostgreSQL). It fails if the node is not running.
func (l *Local) Pause(ctx context.Context, node string) error {
	return l.signalNode(ctx, node, "pause", syscall.SIGSTOP, l.redis.Pause, l.pg.Pause)
}

// Resume thaws a paused node with SIGCONT.
func (l *Local) Resume(ctx context.Context, node string) error {
	return l.signalNode(ctx, node, "resume", syscall.SIGCONT, l.redis.Resume, l.pg.Resume)
}

// signalNode sends sig to a service's process group; redis and pg do the
// same for Redis and PostgreSQL.
func (l *Local) signalNode(ctx context.Context, node, op string, sig syscall.Signal, redis, pg func() error) error {
	return l.onNode(ctx, node, op,
		func(context.Context) error { return redis() },
		func(context.Context) error { return pg() },
		func(_ context.Context, s *service) error {
			p := s.current()
			if p == nil || p.exited() {
				return fmt.Errorf("env: %s %s: not running", op, node)
			}
			if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("env: %s %s: %w", op, node, err)
			}
			if sig == syscall.SIGSTOP {
				// kill(2) only queues the signal: paused means every
				// thread has stopped, not that the signal was sent.
				if err := devenv.WaitStopped(p.pid, 5*time.Second); err != nil {
					return fmt.Errorf("env: %s %s: %w", op, node, err)
				}
			}
			return nil
		})
}

// SetLink sets the fault proxy between the services and dep (redis or
// postgres). It needs LocalOptions.Proxy; without it the error wraps
// ErrUnsupported.
func (l *Local) SetLink(ctx context.Context, dep string, mode LinkMode, latency time.Duration) error {
	if l.ctx.Err() != nil {
		return errClosed
	}
	var p *Proxy
	switch dep {
	case Redis:
		p = l.rdProxy
	case Postgres:
		p = l.pgProxy
	default:
		return fmt.Errorf("env: SetLink: %q is not a dependency (redis, postgres)", dep)
	}
	if p == nil {
		return fmt.Errorf("env: SetLink %s: the services do not go through proxies (set LocalOptions.Proxy): %w", dep, ErrUnsupported)
	}
	if err := p.SetMode(mode, latency); err != nil {
		return fmt.Errorf("env: SetLink %s: %w", dep, err)
	}
	l.logf("env: link to %s: %s %v", dep, mode, latency)
	return nil
}

func wrapNode(node, op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("env: %s %s: %w", op, node, err)
}

// --- usage ---

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// Usage reports a service node's CPU seconds (user + system, summed over
// all its process lifetimes so far) and peak RSS in bytes (the maximum over
// them). Ended lifetimes count through their rusage, the running one
// through /proc.
func (l *Local) Usage(node string) (cpuSeconds float64, peakRSS int64, err error) {
	s := l.svc(node)
	if s == nil {
		if node == Redis || node == Postgres {
			return 0, 0, fmt.Errorf("env: usage of %s: only service nodes are measured: %w", node, ErrUnsupported)
		}
		return 0, 0, l.unknown(node)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cpu := s.cpuDone
	if p := s.proc; p != nil && !p.exited() {
		if c, ok := readCPU(p.pid); ok && c > p.lastCPU {
			p.lastCPU = c
		}
		cpu += p.lastCPU
		if r, ok := readHWM(p.pid); ok && r > s.peakRSS {
			s.peakRSS = r
		}
	}
	return cpu, s.peakRSS, nil
}

// readCPU returns utime+stime of pid in seconds.
func readCPU(pid int) (float64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // state is field 3; utime 14, stime 15
		return 0, false
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(ut+st) / clockTicks, true
}

// readHWM returns VmHWM (peak RSS) of pid in bytes.
func readHWM(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				return 0, false
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// --- service processes ---

func (s *service) current() *svcProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// startService launches s and waits until it is ready. On a first start a
// port lost to another process is replaced (up to 3 tries); restarts keep
// the port. The caller holds s.opMu.
func (l *Local) startService(ctx context.Context, s *service, first bool) error {
	for attempt := 1; ; attempt++ {
		p, err := l.launch(s)
		if err != nil {
			return err
		}
		err = l.waitReady(ctx, s, p)
		if err == nil {
			l.logf("env: %s ready on %s (pid %d)", s.name, s.url(), p.pid)
			return nil
		}
		if !p.exited() {
			_ = killProc(context.Background(), p)
		}
		if first && attempt < 3 && logContains(s.logPath, p.offset, "address already in use") {
			ports, perr := reservePorts(1)
			if perr != nil {
				return err
			}
			releasePort(s.port)
			s.port = ports[0]
			l.logf("env: %s could not bind its port, retrying on %d", s.name, s.port)
			continue
		}
		return err
	}
}

// launch starts one lifetime of s, its output appended to its log.
func (l *Local) launch(s *service) (*svcProc, error) {
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("env: %s: open log: %w", s.name, err)
	}
	defer f.Close() // the child has its own copy
	offset, _ := f.Seek(0, io.SeekEnd)
	cmd := exec.Command(l.binary)
	cmd.Dir = l.runDir
	cmd.Env = l.serviceEnv(s)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("env: start %s (%s): %w", s.name, l.binary, err)
	}
	p := &svcProc{pid: cmd.Process.Pid, offset: offset, done: make(chan struct{})}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		st := cmd.ProcessState
		s.mu.Lock()
		cpu, rss := p.lastCPU, int64(0)
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			cpu = max(cpu, seconds(ru.Utime)+seconds(ru.Stime))
			rss = ru.Maxrss << 10 // KiB on Linux
		}
		s.cpuDone += cpu
		s.peakRSS = max(s.peakRSS, rss)
		p.state = st
		s.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func seconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

var probeClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// waitReady polls GET /ready until it answers 200, the process exits or ctx
// ends (60 s when ctx has no deadline).
func (l *Local) waitReady(ctx context.Context, s *service, p *svcProc) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWait)
		defer cancel()
	}
	start := time.Now()
	last := "no answer yet"
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url()+"/ready", nil)
		if err != nil {
			return err
		}
		resp, err := probeClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		t := time.NewTimer(delay)
		select {
		case <-p.done:
			t.Stop()
			return fmt.Errorf("env: %s %s before it was ready%s", s.name, p.state, tail(s.logPath, p.offset))
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("env: %s not ready after %v (%v; last /ready: %s)%s", s.name, time.Since(start).Round(time.Millisecond), ctx.Err(), last, tail(s.logPath, p.offset))
		case <-t.C:
		}
	}
}

// killProc SIGKILLs p's process group and waits until p is reaped.
func killProc(ctx context.Context, p *svcProc) error {
	if !p.exited() {
		if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("SIGKILL pid %d: %w", p.pid, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pid %d not reaped after SIGKILL: %w", p.pid, ctx.Err())
	}
}

// terminateProc sends SIGTERM (and SIGCONT, in case it is paused) and waits
// up to limit for the exit; past limit, or when ctx ends, it kills p and
// fails.
func terminateProc(ctx context.Context, p *svcProc, limit time.Duration) error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGCONT} {
		if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("%v to pid %d: %w", sig, p.pid, err)
		}
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		_ = killProc(context.Background(), p)
		return fmt.Errorf("did not exit within %v of SIGTERM: killed", limit)
	case <-ctx.Done():
		_ = killProc(context.Background(), p)
		return fmt.Errorf("waiting for the exit after SIGTERM: %w: killed", ctx.Err())
	}
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
			if p := s.current(); p != nil && !p.exited() {
				if err := terminateProc(context.Background(), p, closeGrace); err != nil {
					l.logf("env: close %s: %v", s.name, err)
				} else if !p.state.Success() {
					l.logf("env: close %s: %s after SIGTERM", s.name, p.state)
				}
			}
			releasePort(s.port)
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
		errs = append(errs, l.redis.Close())
	}
	if l.pg != nil {
		if err := l.pg.Stop(ctx); err != nil {
			l.logf("env: close: %v", err)
		}
		errs = append(errs, copyFile(l.pg.LogPath(), filepath.Join(l.runDir, "postgres.log")))
		errs = append(errs, l.pg.Close())
	}
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

// --- logs ---

// tail returns "\n--- last lines of PATH ---\n..." for the log written at or
// after offset, or "" when there is none.
func tail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) <= offset {
		return ""
	}
	b = b[offset:]
	if len(b) > 64<<10 {
		b = b[len(b)-64<<10:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return "\n--- last lines of " + path + " ---\n" + strings.Join(lines, "\n")
}

func logContains(path string, offset int64, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && int64(len(b)) >= offset && bytes.Contains(bytes.ToLower(b[offset:]), []byte(s))
}

// --- ports ---

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{} // held by services of this process
)

// reservePorts returns n distinct free TCP ports (free on every interface:
// the service listens on ":PORT") that no live service of this process holds.
func reservePorts(n int) ([]int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, errors.New("env: no free TCP port")
		}
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			return nil, fmt.Errorf("env: find a free port: %w", err)
		}
		lns = append(lns, ln)
		port := ln.Addr().(*net.TCPAddr).Port
		if !usedPorts[port] {
			usedPorts[port] = true
			ports = append(ports, port)
		}
	}
	return ports, nil
}

func releasePort(port int) {
	portMu.Lock()
	delete(usedPorts, port)
	portMu.Unlock()
}

// --- building the service ---

const modulePath = "github.com/chronicleweaver/chronicleweaver"

var builds = struct {
	mu    sync.Mutex
	paths map[string]string // build tags -> binary
}{paths: map[string]string{}}

// serviceBinary returns binary if set, else a build of the service with
// tags placed in dir. The build runs once per process and set of tags; later
// calls hard-link (or copy) that file into their own dir, so that every
// Local owns its binary, and build again if it has gone.
func serviceBinary(ctx context.Context, binary string, tags []string, dir string, logf func(string, ...any)) (string, error) {
	if binary != "" {
		abs, err := filepath.Abs(binary)
		if err != nil {
			return "", fmt.Errorf("service binary: %w", err)
		}
		if st, err := os.Stat(abs); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("service binary %s is not an executable file", abs)
		}
		return abs, nil
	}
	tags = append([]string(nil), tags...)
	sort.Strings(tags)
	key := strings.Join(tags, ",")
	name := "chronicleweaver"
	if key != "" {
		name += "-" + strings.ReplaceAll(key, ",", "-")
	}
	out := filepath.Join(dir, name)

	builds.mu.Lock()
	defer builds.mu.Unlock()
	if src, ok := builds.paths[key]; ok {
		if src == out {
			if _, err := os.Stat(out); err == nil {
				return out, nil
			}
		} else if err := linkOrCopy(src, out); err == nil {
			return out, nil
		}
		delete(builds.paths, key) // gone with its run folder: build again
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", out}
	if key != "" {
		args = append(args, "-tags", key)
	}
	args = append(args, "./service/cmd/chronicleweaver")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the service (go %s in %s; or set LocalOptions.Binary): %v\n%s", strings.Join(args, " "), root, err, bytes.TrimSpace(output))
	}
	if logf != nil {
		logf("env: built %s in %v", out, time.Since(start).Round(time.Millisecond))
	}
	builds.paths[key] = out
	return out, nil
}

// linkOrCopy makes dst the same file as src: a hard link, or a copy across
// file systems.
func linkOrCopy(src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return err
	}
	_ = os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// moduleRoot finds this module's root above the working directory.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("build the service: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
					return d, nil
				}
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("build the service: module %s not found above %s: run inside it or set LocalOptions.Binary", modulePath, wd)
		}
	}
}
