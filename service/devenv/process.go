package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotRunning is returned by Pause and Resume when the server is not running.
var ErrNotRunning = errors.New("devenv: server is not running")

// ErrClosed is returned by lifecycle methods called after Close.
var ErrClosed = errors.New("devenv: server is closed")

// defaultTimeout bounds waits whose context has no deadline.
const defaultTimeout = 60 * time.Second

// maxPortAttempts is how many free ports a first start tries before giving up.
const maxPortAttempts = 5

// process is a started child process that is the leader of its own process
// group. A goroutine started with it waits for it, so it is always reaped.
type process struct {
	pid  int
	tree bool // also signal the leader's children one by one (they may have left the group)
	done chan struct{}
	err  error // result of cmd.Wait; read only after done is closed
}

func startProcess(cmd *exec.Cmd, tree bool) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{pid: cmd.Process.Pid, tree: tree, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process itself.
func (p *process) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to pid %d: %w", sig, p.pid, err)
	}
	return nil
}

// signalGroup sends sig to the whole process group. Once the leader has been
// reaped nothing is sent: its pid may be reused.
func (p *process) signalGroup(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to process group %d: %w", sig, p.pid, err)
	}
	return nil
}

// wait waits until the process has exited and been reaped.
func (p *process) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for pid %d to exit: %w", p.pid, ctx.Err())
	}
}

// exitDescription describes how the process ended; call after done is closed.
func (p *process) exitDescription() string {
	if p.err == nil {
		return "exited with status 0"
	}
	return p.err.Error()
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

// untilExit returns a context that is also cancelled when proc exits, so
// that a readiness probe stuck on a port held by someone else is abandoned
// as soon as the server has died.
func untilExit(ctx context.Context, proc *process) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-proc.done:
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
// at a time, started in dir on a port of 127.0.0.1 that stays the same
// across restarts, its output appended to logPath.
type server struct {
	name     string // "postgres" or "redis": starts errors and log messages
	procName string // the process in "... exited" errors
	bin      string
	args     []string // the command line after bin, before the port
	portFlag string   // precedes the port on the command line
	cred     *syscall.Credential
	tree     bool // signal the leader's children one by one too (see process)
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

	mu     sync.Mutex // guards proc and closed
	proc   *process   // the current (or last) process; nil before the first start
	closed bool
}

// startOnFreePort is the first start: on a free port, replaced by another
// one (up to maxPortAttempts) when the server cannot bind it.
func (s *server) startOnFreePort(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		port, err := reservePort()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		s.port = port
		proc, bindFailed, err := s.launch(ctx)
		if err == nil {
			s.proc = proc
			logf(s.logf, "%s %s started on port %d (pid %d, dir %s)", s.name, s.version, port, proc.pid, s.dir)
			return nil
		}
		releasePort(port)
		if !bindFailed || attempt == maxPortAttempts || ctx.Err() != nil {
			return err
		}
		logf(s.logf, "%s could not use port %d, retrying with another one", s.name, port)
	}
}

// launch starts the server on s.port and waits until it is ready.
// bindFailed reports that the port was not usable.
func (s *server) launch(ctx context.Context) (_ *process, bindFailed bool, _ error) {
	offset := fileSize(s.logPath)
	logFile, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("%s: open log: %w", s.name, err)
	}
	cmd := exec.Command(s.bin, append(slices.Clip(s.args), s.portFlag, strconv.Itoa(s.port))...)
	cmd.Dir = s.dir
	cmd.Env = cleanEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	proc, err := startProcess(cmd, s.tree)
	logFile.Close() // the child has its own copy
	if err != nil {
		return nil, false, fmt.Errorf("%s: start %s: %w", s.name, cmd.Path, err)
	}
	if err := s.waitReady(ctx, proc); err != nil {
		_ = proc.kill()
		bindFailed = errors.Is(err, errPortTaken) ||
			slices.ContainsFunc(s.bindErrors, func(msg string) bool { return logContains(s.logPath, offset, msg) })
		return nil, bindFailed, startError(fmt.Sprintf("%s: server on 127.0.0.1:%d did not become ready: %v", s.name, s.port, err), s.logPath, offset)
	}
	return proc, false, nil
}

// waitReady polls s.ping until it succeeds, the process exits, or ctx ends.
func (s *server) waitReady(ctx context.Context, proc *process) error {
	probeCtx, cancel := untilExit(ctx, proc)
	defer cancel()
	var delay time.Duration
	var lastErr error
	for {
		if proc.exited() {
			return fmt.Errorf("%s %s", s.procName, proc.exitDescription())
		}
		err := s.ping(probeCtx, proc.pid)
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
		sleepCtx(ctx, delay, proc.done)
	}
}

func (s *server) current() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// pid is the running process's pid, 0 when it is not running.
func (s *server) pid() int {
	if proc := s.current(); proc != nil && !proc.exited() {
		return proc.pid
	}
	return 0
}

// exitedChan is closed when the current process has exited and been reaped
// (already closed when there is none).
func (s *server) exitedChan() <-chan struct{} {
	if proc := s.current(); proc != nil {
		return proc.done
	}
	return closedChan
}

// restart starts the server again on the same directory and port; it fails
// if the server is running or closed.
func (s *server) restart(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	closed, proc := s.closed, s.proc
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if proc != nil && !proc.exited() {
		return fmt.Errorf("%s: already running (pid %d)", s.name, proc.pid)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	proc, _, err := s.launch(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()
	logf(s.logf, "%s restarted on port %d (pid %d)", s.name, s.port, proc.pid)
	return nil
}

// stop resumes the process (in case it is paused), sends it sig and waits
// for it to exit; a process that is not running is left alone. op names the
// operation in errors; mode, if set, is logged in parentheses. The caller
// holds opMu.
func (s *server) stop(ctx context.Context, sig syscall.Signal, op, mode string) error {
	proc := s.current()
	if proc == nil || proc.exited() {
		return nil
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := proc.resume(); err != nil {
		return fmt.Errorf("%s: %s: %w", s.name, op, err)
	}
	if err := proc.signal(sig); err != nil {
		return fmt.Errorf("%s: %s: %w", s.name, op, err)
	}
	if err := proc.wait(ctx); err != nil {
		return fmt.Errorf("%s: %s: %w", s.name, op, err)
	}
	if mode != "" {
		mode = " (" + mode + ")"
	}
	logf(s.logf, "%s on port %d stopped%s: %s", s.name, s.port, mode, proc.exitDescription())
	return nil
}

// kill SIGKILLs the running process and its group (see process.kill).
func (s *server) kill() error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	proc := s.current()
	if proc == nil || proc.exited() {
		return nil
	}
	if err := proc.kill(); err != nil {
		return fmt.Errorf("%s: kill: %w", s.name, err)
	}
	logf(s.logf, "%s on port %d killed", s.name, s.port)
	return nil
}

// signalRunning applies op (pause or resume) to the running process.
func (s *server) signalRunning(op func(*process) error) error {
	proc := s.current()
	if proc == nil || proc.exited() {
		return ErrNotRunning
	}
	return op(proc)
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
	proc := s.proc
	s.mu.Unlock()

	var errs []error
	if proc != nil && !proc.exited() && (graceful == nil || graceful() != nil) {
		if err := proc.kill(); err != nil {
			errs = append(errs, fmt.Errorf("%s: kill: %w", s.name, err))
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("%s: remove %s: %w", s.name, s.dir, err))
	}
	releasePort(s.port)
	return errors.Join(errs...)
}

// --- ports ---

var (
	portMu   sync.Mutex
	reserved = map[int]bool{} // ports handed out to live servers of this process
)

// reservePort returns a currently free TCP port on 127.0.0.1 that no other
// server of this process owns. Another process may still take it before the
// server binds it; the callers retry on bind failures.
func reservePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	var lastErr error
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			lastErr = err
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !reserved[port] {
			reserved[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free TCP port on 127.0.0.1: %v", lastErr)
}

func releasePort(port int) {
	portMu.Lock()
	delete(reserved, port)
	portMu.Unlock()
}

// --- logs ---

// logTail returns the last n lines written to path at or after offset.
func logTail(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxBytes = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size()-offset > maxBytes {
		offset = st.Size() - maxBytes
	}
	if offset < 0 {
		offset = 0
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logContains reports whether the part of the log written at or after offset contains s.
func logContains(path string, offset int64, s string) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return false
	}
	return bytes.Contains(b[offset:], []byte(s))
}

// startError builds an error whose first line is the reason and whose
// following lines are the tail of the server log.
func startError(reason, logPath string, offset int64) error {
	tail := logTail(logPath, offset, 25)
	if tail == "" {
		return errors.New(reason)
	}
	return fmt.Errorf("%s\n--- last lines of %s ---\n%s", reason, logPath, tail)
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

// --- process trees (PostgreSQL backends call setsid, so they are not in the
// postmaster's process group and must be signalled one by one) ---

// procStat returns the state and parent pid of pid from /proc/PID/stat.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseStat(b)
}

// parseStat reads the state and parent pid from a /proc stat line.
func parseStat(b []byte) (state byte, ppid int, ok bool) {
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], ppid, true
}

// childrenOf returns the pids of the live (non-zombie) children of pid.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(child); ok && ppid == pid && state != 'Z' {
			kids = append(kids, child)
		}
	}
	return kids
}

// waitState polls until pid is in one of states (or gone), at most d.
func waitState(pid int, states string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	var delay time.Duration
	for {
		state, _, ok := procStat(pid)
		if !ok || strings.IndexByte(states, state) >= 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		delay = backoff(delay)
		time.Sleep(delay)
	}
}

// WaitStopped waits (at most d) until every thread of pid is stopped (or
// the process is gone). kill(2) only queues SIGSTOP: a thread running on
// another CPU can still answer a request after it returns, so a fault that
// must freeze a process waits for this before calling it paused.
func WaitStopped(pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	var delay time.Duration
	for {
		running, err := runningThreads(pid)
		if err != nil || running == 0 {
			return nil // gone, or every thread stopped
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("devenv: pid %d: %d threads still running %s after SIGSTOP", pid, running, d)
		}
		delay = backoff(delay)
		time.Sleep(delay)
	}
}

// runningThreads counts the threads of pid that are not stopped, traced or
// dead. It fails when pid is gone.
func runningThreads(pid int) (int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("devenv: list threads of pid %d: %w", pid, err)
	}
	running := 0
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/stat")
		if err != nil {
			continue // the thread exited meanwhile
		}
		if state, _, ok := parseStat(b); ok && strings.IndexByte("TtZX", state) < 0 {
			running++
		}
	}
	return running, nil
}

// freeze stops the process and returns its children, whose pids stay valid
// while it is stopped (it cannot reap them).
func (p *process) freeze() ([]int, error) {
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	if !waitState(p.pid, "TtZX", 5*time.Second) {
		return nil, fmt.Errorf("pid %d did not stop after SIGSTOP", p.pid)
	}
	return childrenOf(p.pid), nil
}

// signalAll sends sig to the process group and, for a tree process, to each
// child of the leader (listed while the leader is stopped, so their pids
// cannot be reused meanwhile). It returns the children signalled.
func (p *process) signalAll(sig syscall.Signal) ([]int, error) {
	if p.exited() {
		return nil, nil
	}
	var kids []int
	if p.tree {
		var err error
		if kids, err = p.freeze(); err != nil {
			return nil, err
		}
		for _, k := range kids {
			_ = syscall.Kill(k, sig)
		}
	}
	if err := p.signalGroup(sig); err != nil {
		return kids, err
	}
	if p.tree && sig != syscall.SIGSTOP && sig != syscall.SIGCONT && sig != syscall.SIGKILL {
		_ = p.signalGroup(syscall.SIGCONT) // undo freeze
	}
	return kids, nil
}

// pause stops the process, its group and (tree) its children, and returns
// once every thread of the leader and of those children is stopped.
func (p *process) pause() error {
	kids, err := p.signalAll(syscall.SIGSTOP)
	if err != nil {
		return err
	}
	for _, pid := range append([]int{p.pid}, kids...) {
		if err := WaitStopped(pid, 5*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// resume continues the process, its group and (tree) its children.
func (p *process) resume() error {
	_, err := p.signalAll(syscall.SIGCONT)
	return err
}

// kill SIGKILLs the process, its group and (tree) its children, and waits
// (bounded) until the leader is reaped and the children are gone.
func (p *process) kill() error {
	kids, err := p.signalAll(syscall.SIGKILL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.wait(ctx); err != nil {
		return err
	}
	for _, k := range kids {
		// Reparented to init once the leader died; a zombie counts as gone.
		if !waitState(k, "ZX", 10*time.Second) {
			return fmt.Errorf("child pid %d still alive after SIGKILL", k)
		}
	}
	return nil
}
