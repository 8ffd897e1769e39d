package proc

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// procFS opens /proc; it fails where there is none (every reading then
// fails as for a process that is gone).
var procFS = sync.OnceValues(func() (procfs.FS, error) {
	return procfs.NewFS(procfs.DefaultMountPoint)
})

// procOf is pid's /proc entry; it fails when pid is gone.
func procOf(pid int) (procfs.Proc, error) {
	fs, err := procFS()
	if err != nil {
		return procfs.Proc{}, err
	}
	return fs.Proc(pid)
}

// stat reads /proc/PID/stat; it fails when pid is gone.
func stat(pid int) (procfs.ProcStat, error) {
	p, err := procOf(pid)
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return p.Stat()
}

// state is pid's state letter (R, S, D, T, t, Z, X, ...); ok is false when
// pid is gone.
func state(pid int) (st byte, ok bool) {
	s, err := stat(pid)
	if err != nil || s.State == "" {
		return 0, false
	}
	return s.State[0], true
}

// Children returns the pids of pid's children, zombies included, from
// /proc/PID/task/TID/children (every thread's), or by scanning /proc where
// the kernel lacks those files. A child forked or reaped meanwhile may be
// missed, unless pid is stopped.
func Children(pid int) []int {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	var kids []int
	read := false
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		if err != nil {
			continue // the thread exited, or the kernel has no such file
		}
		read = true
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil && !slices.Contains(kids, k) {
				kids = append(kids, k)
			}
		}
	}
	if !read {
		return childrenByScan(pid)
	}
	return kids
}

// childrenByScan is Children by reading the parent pid of every process.
func childrenByScan(pid int) []int {
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
		if s, err := stat(child); err == nil && s.PPID == pid {
			kids = append(kids, child)
		}
	}
	return kids
}

// groupDescendants returns pid's descendants that are in its process group
// (pid is the group's leader).
func groupDescendants(pid int) []int {
	var out []int
	queue := Children(pid)
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		s, err := stat(d)
		if err != nil {
			continue
		}
		if s.PGRP == pid {
			out = append(out, d)
		}
		queue = append(queue, Children(d)...)
	}
	return out
}

// backoff returns the next polling delay: 5 ms doubling up to 100 ms.
func backoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, 100*time.Millisecond)
}

// waitState polls until pid is in one of states (or gone), at most d.
func waitState(pid int, states string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	var delay time.Duration
	for {
		st, ok := state(pid)
		if !ok || strings.IndexByte(states, st) >= 0 {
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
			return fmt.Errorf("pid %d: %d threads still running %s after SIGSTOP", pid, running, d)
		}
		delay = backoff(delay)
		time.Sleep(delay)
	}
}

// runningThreads counts the threads of pid that are not stopped, traced or
// dead. It fails when pid is gone.
func runningThreads(pid int) (int, error) {
	fs, err := procFS()
	if err != nil {
		return 0, err
	}
	threads, err := fs.AllThreads(pid)
	if err != nil {
		return 0, fmt.Errorf("list threads of pid %d: %w", pid, err)
	}
	running := 0
	for _, t := range threads {
		s, err := t.Stat()
		if err != nil || s.State == "" {
			continue // the thread exited meanwhile
		}
		if strings.IndexByte("TtZX", s.State[0]) < 0 {
			running++
		}
	}
	return running, nil
}

// KillTree SIGKILLs a process that is not a child of ours (a server left
// behind by a process that died): its children (listed while it is
// stopped), its process group and itself; it then waits up to 5 s until it
// is gone or a zombie. Check first that pid is the process meant (its
// working directory, say): pids are reused.
func KillTree(pid int) {
	// Not our child: no goroutine waits for it, so done is never closed.
	p := &Process{pid: pid, group: true, tree: true, done: make(chan struct{})}
	_, _ = p.signalAll(syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	waitState(pid, "ZX", 5*time.Second)
}

// Alive reports whether a process with this pid exists (a zombie too).
func Alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
