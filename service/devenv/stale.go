package devenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/chronicleweaver/chronicleweaver/internal/proc"
)

// Server directories are named devenv-<kind>-<owner pid>-<random> so that
// leftovers of a process that died without Close can be recognised.
const dirPrefix = "devenv-"

func makeServerDir(kind string) (string, error) {
	dir, err := os.MkdirTemp(os.TempDir(), fmt.Sprintf("%s%s-%d-", dirPrefix, kind, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("create %s directory: %w", kind, err)
	}
	return dir, nil
}

// ownerOf extracts the owner pid from a server directory name.
func ownerOf(dir string) (int, bool) {
	parts := strings.Split(filepath.Base(dir), "-")
	if len(parts) != 4 || parts[0]+"-" != dirPrefix {
		return 0, false
	}
	pid, err := strconv.Atoi(parts[2])
	return pid, err == nil && pid > 0
}

var reapOnce sync.Once

// reapStaleOnce runs ReapStale the first time a server is started in this process.
func reapStaleOnce(logf func(string, ...any)) {
	reapOnce.Do(func() {
		n, err := ReapStale()
		if n > 0 || err != nil {
			if logf != nil {
				logf("devenv: removed %d stale server directories (err=%v)", n, err)
			}
		}
	})
}

// ReapStale removes the server directories in os.TempDir left by processes
// that no longer exist (a test binary that was killed or panicked), after
// SIGKILLing the server still running in each of them. A server is only
// killed if its working directory is that directory, so a recycled pid is
// never hit. It returns the number of directories removed. It runs
// automatically before the first server of a process starts.
func ReapStale() (int, error) {
	var errs []error
	removed := 0
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner, ok := ownerOf(dir)
		if !ok || owner == os.Getpid() || proc.Alive(owner) {
			continue
		}
		for _, pidFile := range []string{"postmaster.pid", "redis.pid"} {
			killServerIn(dir, filepath.Join(dir, pidFile))
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// killServerIn SIGKILLs the server whose pid is on the first line of
// pidFile, with its process group and children, if that process's working
// directory is dir.
func killServerIn(dir, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 1 {
		return
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return
	}
	want := filepath.Clean(dir)
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		want = resolved
	}
	if filepath.Clean(cwd) != want {
		return
	}
	proc.KillTree(pid)
}
