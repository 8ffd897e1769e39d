package devenv_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

// TestWaitStopped stops a process that keeps both CPUs busy and checks that
// WaitStopped returns only once every one of its threads is stopped.
func TestWaitStopped(t *testing.T) {
	// Two busy shells in one process group, so both CPUs are in use when
	// SIGSTOP is sent.
	cmd := exec.Command("sh", "-c", "(while :; do :; done) & while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start busy loop: %v", err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	if err := devenv.WaitStopped(pid, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		state := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))[0]
		if state != "T" {
			t.Errorf("thread %s of pid %d is in state %s after WaitStopped, want T", task.Name(), pid, state)
		}
	}

	// A process that was never stopped is reported, with its pid.
	if err := syscall.Kill(-pid, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT: %v", err)
	}
	err = devenv.WaitStopped(pid, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(pid)) {
		t.Errorf("WaitStopped on a running process: err = %v, want one naming pid %d", err, pid)
	}
}
