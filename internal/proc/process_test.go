package proc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

func TestStartLogAndExit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "sh.log")
	run := func(script string) *Process {
		t.Helper()
		p, err := Start(Command{Path: "/bin/sh", Args: []string{"-c", script}, Env: []string{"GREETING=hello"}, Dir: dir, Log: logPath})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}

	first := run(`echo "$GREETING from $(pwd)"; echo "Bind: Address already in use" >&2; exit 3`)
	if first.Log().Offset != 0 || first.Log().Path != logPath {
		t.Errorf("first Log() = %+v", first.Log())
	}
	if st := first.State(); st == nil || st.ExitCode() != 3 {
		t.Errorf("State() = %v, want exit code 3", st)
	}
	if d := first.ExitDescription(); d != "exit status 3" {
		t.Errorf("ExitDescription() = %q", d)
	}
	if got, want := first.Log().Tail(5), "hello from "+dir+"\nBind: Address already in use"; got != want {
		t.Errorf("Tail = %q, want %q (environment, directory, stdout and stderr)", got, want)
	}
	if !first.Log().Contains("Address already in use") || first.Log().Contains("address already in use") {
		t.Error("Contains is not case-sensitive")
	}
	if !first.Log().ContainsFold("address ALREADY in use") {
		t.Error("ContainsFold missed a match differing in case")
	}

	second := run(`echo second`)
	if second.Log().Offset == 0 {
		t.Error("second lifetime's log starts at offset 0")
	}
	if got := second.Log().Tail(10); got != "second" {
		t.Errorf("second Tail = %q, want only the second lifetime's output", got)
	}
	if second.Log().Contains("hello") {
		t.Error("second lifetime's log contains the first's output")
	}
	if d := second.ExitDescription(); d != "exited with status 0" {
		t.Errorf("ExitDescription() = %q", d)
	}
	if b, _ := os.ReadFile(logPath); !strings.HasPrefix(string(b), "hello") {
		t.Errorf("log file not appended to: %q", b)
	}
	// Signals to a reaped process send nothing and succeed.
	for _, err := range []error{second.Signal(syscall.SIGKILL), second.SignalGroup(syscall.SIGKILL), second.Pause(), second.Resume(), second.Kill(context.Background())} {
		if err != nil {
			t.Errorf("signal to a reaped process: %v", err)
		}
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	if _, err := Start(Command{Path: "/nonexistent/program"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/program") {
		t.Errorf("Start of a missing program: %v", err)
	}
	if _, err := Start(Command{Path: "/bin/true", Log: "/nonexistent/dir/x.log"}); err == nil || !strings.Contains(err.Error(), "open log") {
		t.Errorf("Start with an unwritable log: %v", err)
	}
}

func TestLogTail(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "big.log")
	var b strings.Builder
	for i := range 20000 { // ~150 KiB, more than Tail reads
		b.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := (Log{Path: path}).Tail(2); got != "line 19998\nline 19999" {
		t.Errorf("Tail(2) = %q", got)
	}
	if n := strings.Count((Log{Path: path}).Tail(1<<20), "\n"); n > tailBytes/10 {
		t.Errorf("Tail read %d lines: more than the last 64 KiB", n)
	}
	from := LogFrom(path)
	if from.Tail(5) != "" || from.Contains("line") {
		t.Errorf("LogFrom(path) sees earlier output: %q", from.Tail(5))
	}
	if (Log{Path: filepath.Join(t.TempDir(), "missing")}).Tail(5) != "" || (Log{}).Contains("") {
		t.Error("a missing log is not empty")
	}
}

// TestKillGroup: Kill reaches every member of the group, also the
// grandchildren of a shell.
func TestKillGroup(t *testing.T) {
	t.Parallel()
	p, err := Start(Command{Path: "/bin/sh", Args: []string{"-c", "sleep 1000 & sleep 1000 & echo started; wait"}, Group: true, Log: filepath.Join(t.TempDir(), "log")})
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	eventually(t, 10*time.Second, "two sleeps started", func() error {
		if kids = Children(p.PID()); len(kids) != 2 {
			return errors.New("children: " + strconv.Itoa(len(kids)))
		}
		return nil
	})
	if err := p.Kill(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() || p.State().String() != "signal: killed" {
		t.Fatalf("after Kill: exited %v, %v", p.Exited(), p.State())
	}
	for _, k := range kids {
		if !waitState(k, "ZX", 5*time.Second) {
			t.Errorf("sleep %d of the group survived Kill", k)
		}
	}
}

// TestTreeReachesSetsidChildren: a child that left the group (as
// PostgreSQL's backends do) is paused and killed only for a Tree process.
func TestTreeReachesSetsidChildren(t *testing.T) {
	t.Parallel()
	for _, tree := range []bool{true, false} {
		t.Run("tree="+strconv.FormatBool(tree), func(t *testing.T) {
			t.Parallel()
			p := startHelper(t, Command{Group: true, Tree: tree}, "setsid-child")
			child := waitLines(t, p.Log(), "child", 1, 20*time.Second)[0]
			t.Cleanup(func() {
				_ = syscall.Kill(child, syscall.SIGKILL)
				waitState(child, "ZX", 5*time.Second)
			})
			if err := p.Pause(); err != nil {
				t.Fatal(err)
			}
			st, _ := state(child)
			if tree != (st == 'T') {
				t.Errorf("child state %c after Pause (tree %v)", st, tree)
			}
			if err := p.Resume(); err != nil {
				t.Fatal(err)
			}
			if st, _ := state(child); st == 'T' {
				t.Error("child still stopped after Resume")
			}
			if err := p.Kill(context.Background()); err != nil {
				t.Fatal(err)
			}
			if dead := waitState(child, "ZX", 2*time.Second); dead != tree {
				t.Errorf("child dead after Kill: %v (tree %v)", dead, tree)
			}
		})
	}
}

// TestPauseWaitsForEveryThread: Pause returns only once every thread of a
// process that keeps both CPUs busy is stopped, and Resume runs it again.
func TestPauseWaitsForEveryThread(t *testing.T) {
	t.Parallel()
	p := startHelper(t, Command{Group: true}, "tree", "1", "2", "1h", "hold", "root")
	waitLines(t, p.Log(), "holding", 1, 20*time.Second)
	pids := append([]int{p.PID()}, Children(p.PID())...)
	if len(pids) != 3 {
		t.Fatalf("processes %v, want the root and 2 burners", pids)
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	before, err := ReadTreeUsage(p.PID())
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		threads := allThreads(t, pid)
		for _, th := range threads {
			if s, err := th.Stat(); err == nil && s.State != "T" {
				t.Errorf("thread %d of pid %d in state %s after Pause, want T", th.PID, pid, s.State)
			}
		}
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "CPU time grows after Resume", func() error {
		u, err := ReadTreeUsage(p.PID())
		if err != nil || u.CPU <= before.CPU {
			return errors.New("not yet")
		}
		return nil
	})
}

// TestWaitStopped stops a process that keeps both CPUs busy and checks that
// WaitStopped returns only once every one of its threads is stopped.
func TestWaitStopped(t *testing.T) {
	t.Parallel()
	// Two busy shells in one process group, so both CPUs are in use when
	// SIGSTOP is sent.
	p, err := Start(Command{Path: "/bin/sh", Args: []string{"-c", "(while :; do :; done) & while :; do :; done"}, Group: true})
	if err != nil {
		t.Fatalf("start busy loop: %v", err)
	}
	t.Cleanup(func() { _ = p.Kill(context.Background()) })
	pid := p.PID()
	if err := p.SignalGroup(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := WaitStopped(pid, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	threads := allThreads(t, pid)
	for _, th := range threads {
		s, err := th.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if s.State != "T" {
			t.Errorf("thread %d of pid %d is in state %s after WaitStopped, want T", th.PID, pid, s.State)
		}
	}

	// A process that was never stopped is reported, with its pid.
	if err := p.SignalGroup(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err = WaitStopped(pid, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(pid)) {
		t.Errorf("WaitStopped on a running process: err = %v, want one naming pid %d", err, pid)
	}
}

func TestTerminate(t *testing.T) {
	t.Parallel()
	t.Run("drains within the limit", func(t *testing.T) {
		t.Parallel()
		p := startHelper(t, Command{Group: true}, "drain", "100ms")
		waitLines(t, p.Log(), "ready", 1, 20*time.Second)
		if err := p.Pause(); err != nil { // a paused process is resumed to drain
			t.Fatal(err)
		}
		start := time.Now()
		if err := p.Terminate(context.Background(), syscall.SIGTERM, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if !p.State().Success() || time.Since(start) < 100*time.Millisecond {
			t.Errorf("after Terminate: %v in %v, want exit 0 after the 100 ms drain", p.State(), time.Since(start))
		}
	})
	t.Run("killed past the limit", func(t *testing.T) {
		t.Parallel()
		p := startHelper(t, Command{Group: true}, "ignore-term")
		waitLines(t, p.Log(), "ready", 1, 20*time.Second)
		err := p.Terminate(context.Background(), syscall.SIGTERM, 200*time.Millisecond)
		if err == nil || err.Error() != "did not exit within 200ms of SIGTERM: killed" {
			t.Fatalf("Terminate of a process ignoring SIGTERM: %v", err)
		}
		if !p.Exited() || p.State().String() != "signal: killed" {
			t.Errorf("after Terminate past the limit: %v", p.State())
		}
	})
	t.Run("killed when ctx ends", func(t *testing.T) {
		t.Parallel()
		p := startHelper(t, Command{Group: true}, "ignore-term")
		waitLines(t, p.Log(), "ready", 1, 20*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := p.Terminate(ctx, syscall.SIGTERM, 0)
		if !errors.Is(err, context.DeadlineExceeded) || !p.Exited() {
			t.Fatalf("Terminate with an ending ctx: %v, exited %v", err, p.Exited())
		}
	})
}

// TestShutdown: the stop signal goes to the leader alone, and an ending
// ctx leaves the process running.
func TestShutdown(t *testing.T) {
	t.Parallel()
	p := startHelper(t, Command{Group: true}, "ignore-term")
	waitLines(t, p.Log(), "ready", 1, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := p.Shutdown(ctx, syscall.SIGTERM)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || p.Exited() {
		t.Fatalf("Shutdown of a process ignoring SIGTERM: %v, exited %v; want a timeout and the process left running", err, p.Exited())
	}

	q := startHelper(t, Command{Group: true}, "drain", "10ms")
	waitLines(t, q.Log(), "ready", 1, 20*time.Second)
	if err := q.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := q.Shutdown(context.Background(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !q.State().Success() {
		t.Errorf("after Shutdown of a paused process: %v", q.State())
	}
	if err := q.Shutdown(context.Background(), syscall.SIGTERM); err != nil {
		t.Errorf("Shutdown of an exited process: %v", err)
	}
}

// allThreads lists pid's threads.
func allThreads(t *testing.T, pid int) procfs.Procs {
	t.Helper()
	fs, err := procFS()
	if err != nil {
		t.Fatal(err)
	}
	threads, err := fs.AllThreads(pid)
	if err != nil {
		t.Fatal(err)
	}
	return threads
}
