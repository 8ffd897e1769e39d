package devenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chronicleweaver/chronicleweaver/internal/proc"
)

// ErrNotRunning is returned by Pause and Resume when the server is not running.
var ErrNotRunning = errors.New("devenv: server is not running")

// ErrClosed is returned by lifecycle methods called after Close.
var ErrClosed = errors.New("devenv: server is closed")

// defaultTimeout bounds waits whose context has no deadline.
const defaultTimeout = 60 * time.Second

// maxPortAttempts is how many free ports a first start tries before giving up.
const maxPortAttempts = 5

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

// untilExit returns a context that is also cancelled when p exits, so
// that a readiness probe stuck on a port held by someone else is abandoned
// as soon as the server has died.
func untilExit(ctx context.Context, p *proc.Process) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-p.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// backoff returns the next polling delay.
func backoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	d *= 2
	if d > 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return d
}

// sleepCtx waits for d or until ctx is done or the process exits.
func sleepCtx(ctx context.Context, d time.Duration, exited <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-exited:
	}
}

// --- servers ---

// errPortTaken means another server answered on our port.
var errPortTaken = errors.New("another server answers on this port")

// server is the lifecycle that Postgres and Redis share: one child process
// at a time (a proc.Process leading a process group of its own), started in
// dir on a port of 127.0.0.1 that stays the same across restarts (reserved
// in proc's port registry until Close), its output appended to logPath.
type server struct {
	name     string // "postgres" or "redis": starts errors and log messages
	procName string // the process in "... exited" errors
	bin      string
	args     []string // the command line after bin, before the port
	portFlag string   // precedes the port on the command line
	cred     *syscall.Credential
	tree     bool // signal the leader's children one by one too (proc.Command.Tree)
	// ping checks that the server answering on port is the process pid and
	// that it is ready; an error wrapping errPortTaken means another server
	// answers there.
	ping       func(ctx context.Context, pid int) error
	bindErrors []string // log messages meaning the port could not be bound
	logf       func(format string, args ...any)

	version string
	dir     string
	logPath string
	port    int

	opMu sync.Mutex // serialises lifecycle operations

	mu      sync.Mutex    // guards process and closed
	process *proc.Process // the current (or last) process; nil before the first start
	closed  bool
}

// startOnFreePort is the first start: on a free port, replaced by another
// one (up to maxPortAttempts) when the server cannot bind it.
func (s *server) startOnFreePort(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		port, err := proc.ReservePort()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		s.port = port
		p, bindFailed, err := s.launch(ctx)
		if err == nil {
			s.process = p
			logf(s.logf, "%s %s started on port %d (pid %d, dir %s)", s.name, s.version, port, p.PID(), s.dir)
			return nil
		}
		proc.ReleasePorts(port)
		if !bindFailed || attempt == maxPortAttempts || ctx.Err() != nil {
			return err
		}
		logf(s.logf, "%s could not use port %d, retrying with another one", s.name, port)
	}
}

// launch starts the server on s.port and waits until it is ready.
// bindFailed reports that the port was not usable.
func (s *server) launch(ctx context.Context) (_ *proc.Process, bindFailed bool, _ error) {
	p, err := proc.Start(proc.Command{
		Path:       s.bin,
		Args:       append(slices.Clip(s.args), s.portFlag, strconv.Itoa(s.port)),
		Env:        cleanEnv(),
		Dir:        s.dir,
		Log:        s.logPath,
		Group:      true,
		Tree:       s.tree,
		Credential: s.cred,
	})
	if err != nil {
		return nil, false, fmt.Errorf("%s: start %s: %w", s.name, s.bin, err)
	}
	if err := s.waitReady(ctx, p); err != nil {
		_ = p.Kill(context.Background())
		log := p.Log()
		bindFailed = errors.Is(err, errPortTaken) || slices.ContainsFunc(s.bindErrors, log.Contains)
		return nil, bindFailed, startError(fmt.Sprintf("%s: server on 127.0.0.1:%d did not become ready: %v", s.name, s.port, err), log)
	}
	return p, false, nil
}

// waitReady polls s.ping until it succeeds, the process exits, or ctx ends.
func (s *server) waitReady(ctx context.Context, p *proc.Process) error {
	probeCtx, cancel := untilExit(ctx, p)
	defer cancel()
	var delay time.Duration
	var lastErr error
	for {
		if p.Exited() {
			return fmt.Errorf("%s %s", s.procName, p.ExitDescription())
		}
		err := s.ping(probeCtx, p.PID())
		if err == nil {
			return nil
		}
		if errors.Is(err, errPortTaken) {
			return err
		}
		lastErr = err
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		}
		delay = backoff(delay)
		sleepCtx(ctx, delay, p.Done())
	}
}

func (s *server) current() *proc.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.process
}

// running is the current process if it runs, else nil.
func (s *server) running() *proc.Process {
	if p := s.current(); p != nil && !p.Exited() {
		return p
	}
	return nil
}

// pid is the running process's pid, 0 when it is not running.
func (s *server) pid() int {
	if p := s.running(); p != nil {
		return p.PID()
	}
	return 0
}

// exitedChan is closed when the current process has exited and been reaped
// (already closed when there is none).
func (s *server) exitedChan() <-chan struct{} {
	if p := s.current(); p != nil {
		return p.Done()
	}
	return closedChan
}

// usage is what the server's current process and its children (PostgreSQL's
// backends) have used; zero before the first start.
func (s *server) usage() proc.Usage {
	if p := s.current(); p != nil {
		return p.Usage()
	}
	return proc.Usage{}
}

// restart starts the server again on the same directory and port; it fails
// if the server is running or closed.
func (s *server) restart(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	closed, p := s.closed, s.process
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if p != nil && !p.Exited() {
		return fmt.Errorf("%s: already running (pid %d)", s.name, p.PID())
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	p, _, err := s.launch(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.process = p
	s.mu.Unlock()
	logf(s.logf, "%s restarted on port %d (pid %d)", s.name, s.port, p.PID())
	return nil
}

// stop resumes the process (in case it is paused), sends it sig and waits
// for it to exit (proc.Process.Shutdown); a process that is not running is
// left alone. op names the operation in errors; mode, if set, is logged in
// parentheses. The caller holds opMu.
func (s *server) stop(ctx context.Context, sig syscall.Signal, op, mode string) error {
	p := s.running()
	if p == nil {
		return nil
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := p.Shutdown(ctx, sig); err != nil {
		return fmt.Errorf("%s: %s: %w", s.name, op, err)
	}
	if mode != "" {
		mode = " (" + mode + ")"
	}
	logf(s.logf, "%s on port %d stopped%s: %s", s.name, s.port, mode, p.ExitDescription())
	return nil
}

// kill SIGKILLs the running process, its group and (tree) its children,
// and waits until they are gone (proc.Process.Kill).
func (s *server) kill() error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	p := s.running()
	if p == nil {
		return nil
	}
	if err := p.Kill(context.Background()); err != nil {
		return fmt.Errorf("%s: kill: %w", s.name, err)
	}
	logf(s.logf, "%s on port %d killed", s.name, s.port)
	return nil
}

// signalRunning applies op (pause or resume) to the running process.
func (s *server) signalRunning(op func(*proc.Process) error) error {
	p := s.running()
	if p == nil {
		return ErrNotRunning
	}
	return op(p)
}

// close ends the running process, first with graceful if it is set and
// then, if graceful fails (or is nil), with SIGKILL; it then removes the
// directory and releases the port. Only the first call does anything.
func (s *server) close(graceful func() error) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	p := s.process
	s.mu.Unlock()

	var errs []error
	if p != nil && !p.Exited() && (graceful == nil || graceful() != nil) {
		if err := p.Kill(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("%s: kill: %w", s.name, err))
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("%s: remove %s: %w", s.name, s.dir, err))
	}
	proc.ReleasePorts(s.port)
	return errors.Join(errs...)
}

// startError builds an error whose first line is the reason and whose
// following lines are the tail of the server log.
func startError(reason string, log proc.Log) error {
	tail := log.Tail(25)
	if tail == "" {
		return errors.New(reason)
	}
	return fmt.Errorf("%s\n--- last lines of %s ---\n%s", reason, log.Path, tail)
}

// cleanEnv is the environment for server processes: ours without variables
// that would change what the servers or their tools do.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "REDIS") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func logf(f func(string, ...any), format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
