package scenario

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRunFoldersPruned: each new run keeps the newest keep folders of its
// own scenario (same-second runs included, ordered by their counter) and
// leaves other scenarios' folders, a planted bug's folders and folders not
// named like runs alone; keep 0 removes nothing.
func TestRunFoldersPruned(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	for _, other := range []string{"20200101-000000-scale-2", "20200101-000000-scale-bug-x", "verify"} {
		if err := os.Mkdir(filepath.Join(parent, other), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var made []string
	for i, at := range []time.Time{t0, t0, t0, t0.Add(time.Second), t0.Add(2 * time.Second)} {
		dir, err := newRunDir(parent, "scale", 3, at)
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsAbs(dir) {
			t.Errorf("run %d: folder %s is not absolute", i, dir)
		}
		made = append(made, filepath.Base(dir))
	}
	wantMade := []string{"20260301-120000-scale", "20260301-120000.2-scale", "20260301-120000.3-scale",
		"20260301-120001-scale", "20260301-120002-scale"}
	if !slices.Equal(made, wantMade) {
		t.Errorf("folders made %q, want %q", made, wantMade)
	}
	want := []string{"20200101-000000-scale-2", "20200101-000000-scale-bug-x",
		"20260301-120000.3-scale", "20260301-120001-scale", "20260301-120002-scale", "verify"}
	if got := dirNames(t, parent); !slices.Equal(got, want) {
		t.Errorf("kept %q, want %q", got, want)
	}

	if _, err := newRunDir(parent, "scale", 0, t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, parent); len(got) != len(want)+1 {
		t.Errorf("keep 0 removed folders: %q", got)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestUsage counts run folders and bytes, a hard-linked file once.
func TestUsage(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	a := filepath.Join(parent, "20260301-120000-crash-redis")
	b := filepath.Join(parent, "20260301-120001-crash-redis")
	for _, d := range []string{a, b, filepath.Join(parent, "bench-smoke")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a, "chronicleweaver"), make([]byte, 3000), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(a, "chronicleweaver"), filepath.Join(b, "chronicleweaver")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "history.jsonl"), make([]byte, 500), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := Usage(parent)
	if err != nil {
		t.Fatal(err)
	}
	if u.Folders != 2 || u.Bytes != 3500 {
		t.Errorf("Usage = %d folders, %d bytes; want 2 folders, 3500 bytes", u.Folders, u.Bytes)
	}
	if s := u.String(); !strings.Contains(s, "holds 2 run folders, 3 kB") {
		t.Errorf("String() = %q", s)
	}
	if u, err := Usage(filepath.Join(parent, "missing")); err != nil || u.Folders != 0 || u.Bytes != 0 {
		t.Errorf("Usage of a missing folder = %+v, %v", u, err)
	}
}

func TestKeepRunsSetting(t *testing.T) {
	for _, c := range []struct {
		value string
		want  int
		err   bool
	}{{"", DefaultKeepRuns, false}, {"5", 5, false}, {" 0 ", 0, false}, {"-1", 0, true}, {"many", 0, true}} {
		t.Setenv(KeepRunsEnv, c.value)
		got, err := KeepRunsSetting()
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%s=%q: %d, %v; want %d (error %v)", KeepRunsEnv, c.value, got, err, c.want, c.err)
		}
		if err != nil && !strings.Contains(err.Error(), KeepRunsEnv) {
			t.Errorf("error %q does not name %s", err, KeepRunsEnv)
		}
	}
}

// TestRepoRelative: a run folder under the repository is named relative to
// it; one outside keeps its absolute path.
func TestRepoRelative(t *testing.T) {
	t.Parallel()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(dir)
	in := filepath.Join(root, "runs", "20260301-120000-crash-redis")
	if got, want := RepoRelative(in), filepath.Join("runs", "20260301-120000-crash-redis"); got != want {
		t.Errorf("RepoRelative(%s) = %s, want %s", in, got, want)
	}
	out := filepath.Join(os.TempDir(), "elsewhere")
	if got := RepoRelative(out); got != out {
		t.Errorf("RepoRelative(%s) = %s, want it unchanged", out, got)
	}
}
