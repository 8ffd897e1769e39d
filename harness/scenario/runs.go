package scenario

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Run folders. Each run of a scenario gets a folder under the runs folder
// (runs/ of the repository by default, ignored by git), named
//
//	YYYYMMDD-HHMMSS[.N]-SCENARIO[-bug-BUG]
//
// (UTC; .N when two runs of the same scenario start in the same second), so
// the names of one scenario's runs sort by age. Only the newest few of each
// scenario (and planted bug) are kept: the others are removed when a new
// run starts, so runs/ does not grow without bound.

// KeepRunsEnv is the environment variable that sets how many run folders
// of each scenario are kept (see KeepRunsSetting).
const KeepRunsEnv = "CHRONICLE_KEEP_RUNS"

// DefaultKeepRuns is the number of run folders kept per scenario when
// KeepRunsEnv is unset.
const DefaultKeepRuns = 3

// runStampLayout is the time part of a run folder's name.
const runStampLayout = "20060102-150405"

// runFolder matches a run folder's name: its time stamp, the collision
// counter and the scenario part.
var runFolder = regexp.MustCompile(`^(\d{8}-\d{6})(?:\.(\d+))?-(.+)$`)

// KeepRunsSetting reads KeepRunsEnv: a whole number of run folders to keep
// per scenario, at least 1, or 0 to keep every one; DefaultKeepRuns when
// unset. A bad value is an error naming the variable.
func KeepRunsSetting() (int, error) {
	v := strings.TrimSpace(os.Getenv(KeepRunsEnv))
	if v == "" {
		return DefaultKeepRuns, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a whole number of run folders to keep per scenario (0: keep all)", KeepRunsEnv, v)
	}
	return n, nil
}

// newRunDir creates the run folder of a run of suffix (a scenario name,
// with -bug-BUG for a planted bug) under parent and returns its absolute
// path. When keep > 0 the older folders of the same suffix beyond the
// newest keep (this one included) are removed.
func newRunDir(parent, suffix string, keep int, now time.Time) (string, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("scenario: create runs folder: %w", err)
	}
	stamp := now.UTC().Format(runStampLayout)
	dir := filepath.Join(parent, stamp+"-"+suffix)
	for n := 2; ; n++ { // two runs in the same second get their own folders
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			break
		}
		if !os.IsExist(err) {
			return "", fmt.Errorf("scenario: create run folder: %w", err)
		}
		dir = filepath.Join(parent, fmt.Sprintf("%s.%d-%s", stamp, n, suffix))
	}
	if keep > 0 {
		if err := pruneRuns(parent, suffix, keep); err != nil {
			return "", err
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("scenario: run folder: %w", err)
	}
	return abs, nil
}

// pruneRuns removes the run folders of suffix under parent but the newest
// keep.
func pruneRuns(parent, suffix string, keep int) error {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return fmt.Errorf("scenario: prune run folders: %w", err)
	}
	type run struct {
		name string
		n    int
	}
	var runs []run
	for _, e := range entries {
		m := runFolder.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil || m[3] != suffix {
			continue
		}
		n := 1
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		runs = append(runs, run{e.Name(), n})
	}
	if len(runs) <= keep {
		return nil
	}
	// Oldest first: by stamp (the name's prefix), then counter.
	sort.Slice(runs, func(i, j int) bool {
		si, sj := runs[i].name[:len(runStampLayout)], runs[j].name[:len(runStampLayout)]
		if si != sj {
			return si < sj
		}
		return runs[i].n < runs[j].n
	})
	var errs []error
	for _, r := range runs[:len(runs)-keep] {
		if err := os.RemoveAll(filepath.Join(parent, r.name)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scenario: prune run folders: %w", err)
	}
	return nil
}

// RunsUsage is what a runs folder holds.
type RunsUsage struct {
	Dir     string // as given
	Folders int    // run folders (named as Run names them)
	Bytes   int64  // every file under Dir, a file with several links counted once
}

// String is a one-line account, e.g. "runs/ holds 12 run folders, 230 MB".
func (u RunsUsage) String() string {
	folders := "run folders"
	if u.Folders == 1 {
		folders = "run folder"
	}
	return fmt.Sprintf("%s/ holds %d %s, %s", strings.TrimSuffix(u.Dir, "/"), u.Folders, folders, fmtBytes(u.Bytes))
}

// Usage measures the runs folder dir. A missing folder holds nothing.
func Usage(dir string) (RunsUsage, error) {
	u := RunsUsage{Dir: dir}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return u, fmt.Errorf("scenario: runs folder: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && runFolder.MatchString(e.Name()) {
			u.Folders++
		}
	}
	// Service binaries are hard links shared by the run folders of one
	// process (harness/env): count each file once.
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // removed while walking
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			k := inode{uint64(st.Dev), uint64(st.Ino)} // widths differ by platform
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		u.Bytes += info.Size()
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("scenario: runs folder: %w", err)
	}
	return u, nil
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// RepoRelative returns path relative to the repository (the folder above
// the scenarios folder) when it lies inside it, else path unchanged: result
// files name run folders this way, so they do not carry the absolute paths
// of the machine that ran them.
func RepoRelative(path string) string {
	dir, err := Dir()
	if err != nil {
		return path
	}
	root, err := filepath.Abs(filepath.Dir(dir))
	if err != nil {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return rel
}
