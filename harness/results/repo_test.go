package results

import (
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGitDescribeIgnoresGeneratedFiles(t *testing.T) {
	root := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("main.go", "package main\n")
	write("REPORT.md", "# r\n")
	write("results/bench.md", "old\n")
	git("add", "-A")
	git("commit", "-q", "-m", "first")

	clean := gitDescribeIn(root)
	if clean == "unknown" || strings.HasSuffix(clean, "-dirty") {
		t.Fatalf("fresh commit described as %q", clean)
	}
	write("results/bench.md", "new\n")
	write("REPORT.md", "# regenerated\n")
	if got := gitDescribeIn(root); got != clean {
		t.Fatalf("with only generated files changed: %q, want %q", got, clean)
	}
	write("main.go", "package main // changed\n")
	if got := gitDescribeIn(filepath.Join(root, "results")); got != clean+"-dirty" {
		t.Fatalf("with a source file changed (asked from a subfolder): %q, want %q", got, clean+"-dirty")
	}
}

func TestCountTestFuncs(t *testing.T) {
	t.Parallel()
	src := `package x

import tt "testing"

func TestA(t *tt.T)            {}
func Test(t *tt.T)             {}
func Test_b(t *tt.T)           {}
func Testing(t *tt.T)          {}
func TestMain(m *tt.M)         {}
func BenchmarkC(b *tt.B)       {}
func BenchmarkD(t *tt.T)       {}
func FuzzE(f *tt.F)            {}
func TestHelper(t *tt.T, n int) {}
func (s S) TestMethod(t *tt.T) {}
func helper(t *tt.T)           {}
`
	n, err := countTestFuncs(token.NewFileSet(), "x_test.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 { // TestA, Test, Test_b, BenchmarkC, FuzzE
		t.Errorf("countTestFuncs = %d, want 5", n)
	}
	if _, err := countTestFuncs(token.NewFileSet(), "bad_test.go", []byte("package")); err == nil {
		t.Errorf("countTestFuncs of a broken file: no error")
	}
	for _, tt := range []struct {
		src  string
		want int
	}{{"", 0}, {"a", 1}, {"a\n", 1}, {"a\nb", 2}, {"a\n\n", 2}} {
		if got := countLines([]byte(tt.src)); got != tt.want {
			t.Errorf("countLines(%q) = %d, want %d", tt.src, got, tt.want)
		}
	}
}

func TestCollectRepo(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	files := map[string]string{
		"a.go":                 "package a\n\nfunc A() {}\n",
		"a_test.go":            "package a\n\nimport \"testing\"\n\nfunc TestA(t *testing.T) {}\nfunc BenchmarkA(b *testing.B) {}\n",
		"sub/b_test.go":        "package sub\n\nimport \"testing\"\n\nfunc FuzzB(f *testing.F) {}",
		"sub/testdata/x.go":    "package x\n",
		"untracked.go":         "package a\n",
		"ignored/i.go":         "package i\n",
		".gitignore":           "/ignored/\n",
		"notes.md":             "# notes\n",
		"deleted_from_tree.go": "package a\n",
	}
	for name, src := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", "a.go", "a_test.go", "sub", ".gitignore", "notes.md", "deleted_from_tree.go")
	git("commit", "-q", "-m", "init")
	if err := os.Remove(filepath.Join(dir, "deleted_from_tree.go")); err != nil {
		t.Fatal(err)
	}

	r, err := CollectRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	// a.go (3 lines), a_test.go (6), sub/b_test.go (5), untracked.go (1).
	want := Repo{Commit: r.Commit, TestFiles: 2, TestFuncs: 3, GoFiles: 4, GoLines: 15}
	if r != want {
		t.Errorf("CollectRepo = %+v, want %+v", r, want)
	}
	if !strings.HasSuffix(r.Commit, "-dirty") || r.Commit == "unknown" {
		t.Errorf("Commit = %q, want a dirty describe", r.Commit)
	}

	out := t.TempDir()
	if err := WriteRepo(out, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadRepo(filepath.Join(out, "repo.json"))
	if err != nil || back != r {
		t.Errorf("ReadRepo = %+v, %v; want %+v", back, err, r)
	}
	if _, err := CollectRepo(t.TempDir()); err == nil {
		t.Errorf("CollectRepo outside a repository: no error")
	}
}
