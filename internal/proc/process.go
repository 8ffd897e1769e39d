package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Command is a program to start.
type Command struct {
	Path string   // the program (looked up in $PATH when it holds no slash)
	Args []string // its arguments, after the program name
	Env  []string // its whole environment; nil inherits ours (as os/exec)
	Dir  string   // its working directory; "" is ours
	// Log is the file its stdout and stderr are appended to, created (0644)
	// if missing; "" discards them.
	Log string
	// Group makes the process the leader of a process group of its own: a
	// Ctrl-C in the terminal does not reach it, and the group signals of
	// Pause, Resume, Kill and Terminate reach everything it forks that stays
	// in the group.
	Group bool
	// Tree: the process's children may leave its group (PostgreSQL's
	// backends call setsid), so every signal to everything is also sent to
	// each child of the leader, listed from /proc while the leader is
	// stopped.
	Tree bool
	// Credential runs the process as another user (PostgreSQL refuses
	// root); nil runs it as we are.
	Credential *syscall.Credential
}

// Process is a started child process. A goroutine started with it waits for
// it, so it is always reaped. Its methods are safe for concurrent use; a
// signal method called after the process has been reaped sends nothing (its
// pid may have been reused).
type Process struct {
	pid   int
	group bool
	tree  bool
	log   Log

	done  chan struct{}    // closed by the waiting goroutine once reaped
	state *os.ProcessState // written by the waiting goroutine before done is closed
	err   error            // cmd.Wait's result, likewise

	mu    sync.Mutex // guards usage
	usage Usage      // the highest CPU and peak RSS read so far
}

// Start starts c. The error of a program that cannot be started is
// exec's, which names it.
func Start(c Command) (*Process, error) {
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = c.Env
	cmd.Dir = c.Dir
	var offset int64
	if c.Log != "" {
		f, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		defer f.Close() // the child has its own copy
		if offset, err = f.Seek(0, io.SeekEnd); err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		cmd.Stdout, cmd.Stderr = f, f
	}
	if c.Group || c.Credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: c.Group, Credential: c.Credential}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{
		pid:   cmd.Process.Pid,
		group: c.Group,
		tree:  c.Tree,
		log:   Log{Path: c.Log, Offset: offset},
		done:  make(chan struct{}),
	}
	go func() {
		p.err = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	return p, nil
}

// PID is the process's pid (also once it has exited).
func (p *Process) PID() int { return p.pid }

// Log is what this process wrote to Command.Log.
func (p *Process) Log() Log { return p.log }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited and been reaped.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits until the process has exited and been reaped, or ctx ends.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for pid %d to exit: %w", p.pid, ctx.Err())
	}
}

// State is the exit state; nil until the process has been reaped.
func (p *Process) State() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.state
}

// ExitDescription describes how the process ended ("exited with status
// 0", "exit status 1", "signal: killed"); "running" before that.
func (p *Process) ExitDescription() string {
	if !p.Exited() {
		return "running"
	}
	if p.err == nil {
		return "exited with status 0"
	}
	return p.err.Error()
}

// Signal sends sig to the process alone.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s to pid %d: %w", SignalName(sig), p.pid, err)
	}
	return nil
}

// SignalGroup sends sig to the process's group (to the process alone when
// it was not started with Command.Group).
func (p *Process) SignalGroup(sig syscall.Signal) error {
	if !p.group {
		return p.Signal(sig)
	}
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s to process group %d: %w", SignalName(sig), p.pid, err)
	}
	return nil
}

// freeze stops the leader and returns its children, whose pids stay valid
// while it is stopped (it cannot reap them).
func (p *Process) freeze() ([]int, error) {
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	if !waitState(p.pid, "TtZX", 5*time.Second) {
		return nil, fmt.Errorf("pid %d did not stop after SIGSTOP", p.pid)
	}
	return Children(p.pid), nil
}

// signalAll sends sig to everything: the group (or the process) and, for a
// tree, each child of the leader (listed while the leader is stopped). It
// returns the children signalled.
func (p *Process) signalAll(sig syscall.Signal) ([]int, error) {
	if p.Exited() {
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
	if err := p.SignalGroup(sig); err != nil {
		return kids, err
	}
	if p.tree && sig != syscall.SIGSTOP && sig != syscall.SIGCONT && sig != syscall.SIGKILL {
		_ = p.SignalGroup(syscall.SIGCONT) // undo freeze
	}
	return kids, nil
}

// Pause stops everything with SIGSTOP and returns once every thread of the
// leader, of the tree's children and of the other members of its group is
// stopped (at most 5 s each).
func (p *Process) Pause() error {
	kids, err := p.signalAll(syscall.SIGSTOP)
	if err != nil {
		return err
	}
	pids := append([]int{p.pid}, kids...)
	if p.group {
		pids = append(pids, groupDescendants(p.pid)...)
	}
	for _, pid := range pids {
		if err := WaitStopped(pid, 5*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// Resume continues everything with SIGCONT.
func (p *Process) Resume() error {
	_, err := p.signalAll(syscall.SIGCONT)
	return err
}

// killWait bounds how long Kill waits for the leader to be reaped.
const killWait = 30 * time.Second

// Kill sends SIGKILL to everything and waits until the leader is reaped and
// the tree's children are gone (or zombies), at most 30 s or until ctx
// ends. Killing a process that has exited does nothing.
func (p *Process) Kill(ctx context.Context) error {
	kids, err := p.signalAll(syscall.SIGKILL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, killWait)
	defer cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("pid %d not reaped after SIGKILL: %w", p.pid, ctx.Err())
	}
	for _, k := range kids {
		// Re-parented to init once the leader died; a zombie counts as gone.
		if !waitState(k, "ZX", 10*time.Second) {
			return fmt.Errorf("child pid %d still alive after SIGKILL", k)
		}
	}
	return nil
}

// Terminate asks everything to stop with sig (then SIGCONT, in case it is
// paused) and waits for the exit at most limit (no limit when limit <= 0:
// until ctx ends). Past the limit, or when ctx ends first, it kills the
// process and fails. Terminating a process that has exited does nothing;
// whether it exited with status 0 is in State.
func (p *Process) Terminate(ctx context.Context, sig syscall.Signal, limit time.Duration) error {
	for _, s := range []syscall.Signal{sig, syscall.SIGCONT} {
		if _, err := p.signalAll(s); err != nil {
			return err
		}
	}
	var expired <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-p.done:
		return nil
	case <-expired:
		_ = p.Kill(context.Background())
		return fmt.Errorf("did not exit within %v of %s: killed", limit, SignalName(sig))
	case <-ctx.Done():
		_ = p.Kill(context.Background())
		return fmt.Errorf("waiting for the exit after %s: %w: killed", SignalName(sig), ctx.Err())
	}
}

// Shutdown resumes everything (in case it is paused), sends sig to the
// leader alone and waits for its exit until ctx ends; it is for a server
// that stops its own children on that signal (PostgreSQL's fast or
// immediate shutdown, Redis's SIGTERM). When ctx ends first the process is
// left as it is. Shutting down a process that has exited does nothing.
func (p *Process) Shutdown(ctx context.Context, sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := p.Resume(); err != nil {
		return err
	}
	if err := p.Signal(sig); err != nil {
		return err
	}
	return p.Wait(ctx)
}

// SignalName is sig's name, such as "SIGTERM".
func SignalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return sig.String()
}
