package report

import (
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
