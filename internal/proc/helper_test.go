package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// helperEnv makes the test binary run as a helper process (see helper)
// instead of the tests.
const helperEnv = "PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helper(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// helper is a process for the tests to start, measure and signal; it
// reports its progress as lines on stdout:
//
//	burn D exit|hold        burn D of CPU time ("burnt PID"), then exit or block
//	tree DEPTH WIDTH D reap|hold [root]
//	                        DEPTH 0 is "burn D"; above it starts WIDTH
//	                        children "tree DEPTH-1 ...", then with reap waits
//	                        for them ("reaped PID") and exits (the root
//	                        blocks), with hold blocks ("holding PID")
//	setsid-child            starts a child that calls setsid ("child PID"),
//	                        then blocks
//	setsid                  calls setsid, then blocks
//	drain D                 on SIGTERM waits D, then exits 0 ("ready PID")
//	ignore-term             ignores SIGTERM ("ready PID")
func helper(args []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "helper: "+format+"\n", a...)
		return 2
	}
	if len(args) == 0 {
		return fail("no mode")
	}
	pid := os.Getpid()
	block := func() int { select {} }
	switch args[0] {
	case "burn":
		d, err := time.ParseDuration(args[1])
		if err != nil {
			return fail("%v", err)
		}
		burn(d)
		fmt.Printf("burnt %d\n", pid)
		if args[2] == "exit" {
			return 0
		}
		return block()
	case "tree":
		depth, _ := strconv.Atoi(args[1])
		width, _ := strconv.Atoi(args[2])
		if depth == 0 {
			return helper([]string{"burn", args[3], map[string]string{"reap": "exit", "hold": "hold"}[args[4]]})
		}
		var cmds []*exec.Cmd
		for range width {
			cmd := exec.Command(os.Args[0], "tree", strconv.Itoa(depth-1), args[2], args[3], args[4])
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Start(); err != nil {
				return fail("%v", err)
			}
			cmds = append(cmds, cmd)
		}
		if args[4] == "hold" {
			fmt.Printf("holding %d\n", pid)
			return block()
		}
		for _, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				return fail("child: %v", err)
			}
		}
		fmt.Printf("reaped %d\n", pid)
		if len(args) < 6 || args[5] != "root" {
			return 0 // an inner node exits once its children are reaped
		}
		return block()
	case "setsid-child":
		cmd := exec.Command(os.Args[0], "setsid")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return fail("%v", err)
		}
		return block()
	case "setsid":
		if _, err := syscall.Setsid(); err != nil {
			return fail("setsid: %v", err)
		}
		fmt.Printf("child %d\n", pid)
		return block()
	case "drain":
		d, err := time.ParseDuration(args[1])
		if err != nil {
			return fail("%v", err)
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		fmt.Printf("ready %d\n", pid)
		<-sigs
		time.Sleep(d) // the drain being simulated
		return 0
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Printf("ready %d\n", pid)
		return block()
	}
	return fail("unknown mode %q", args[0])
}

// burn spins until this process has used d of CPU time.
func burn(d time.Duration) {
	for {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			panic(err)
		}
		if duration(ru.Utime)+duration(ru.Stime) >= d {
			return
		}
		for i := 0; i < 1_000_000; i++ {
			_ = i * i
		}
	}
}

// startHelper starts the test binary as a helper with args, its output in
// a log in t's temporary directory, and kills it at cleanup.
func startHelper(t *testing.T, c Command, args ...string) *Process {
	t.Helper()
	c.Path = os.Args[0]
	c.Args = args
	c.Env = append(os.Environ(), helperEnv+"=1", "GOMAXPROCS=2")
	if c.Log == "" {
		c.Log = t.TempDir() + "/helper.log"
	}
	p, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Kill(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p
}

// waitLines waits until the log holds n lines starting with prefix and
// returns the pid each names.
func waitLines(t *testing.T, l Log, prefix string, n int, d time.Duration) []int {
	t.Helper()
	var pids []int
	eventually(t, d, fmt.Sprintf("%d %q lines in %s", n, prefix, l.Path), func() error {
		b, ok := l.read()
		if !ok {
			return fmt.Errorf("no log")
		}
		pids = pids[:0]
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
				pid, err := strconv.Atoi(rest)
				if err != nil {
					return err
				}
				pids = append(pids, pid)
			}
		}
		if len(pids) < n {
			return fmt.Errorf("%d lines so far; log:\n%s", len(pids), l.Tail(20))
		}
		return nil
	})
	return pids
}

// eventually polls cond until it returns nil or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		<-time.After(delay)
	}
}
