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
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(fields[1])
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

// pause stops the process, its group and (tree) its children.
func (p *process) pause() error {
	_, err := p.signalAll(syscall.SIGSTOP)
	return err
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
