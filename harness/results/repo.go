package results

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Repo is results/repo.json: facts about the repository, measured when the
// results are generated (`make report`), so that the report's figures about
// the code trace to a file under results/ like its measurements do.
type Repo struct {
	Commit    string `json:"commit"`     // git describe --always, -dirty outside results/
	TestFiles int    `json:"test_files"` // *_test.go files
	TestFuncs int    `json:"test_funcs"` // func TestXxx, BenchmarkXxx and FuzzXxx declarations
	GoFiles   int    `json:"go_files"`   // .go files, tests included
	GoLines   int    `json:"go_lines"`   // lines of those files
}

// CollectRepo measures the repository whose working tree is root. The files
// are those `git ls-files` lists there: tracked, plus untracked files that
// are not ignored (so files about to be committed count), less files under a
// testdata or vendor folder (the go tool does not build them) and tracked
// files deleted from the working tree. Test functions are the top-level
// TestXxx(*testing.T), BenchmarkXxx(*testing.B) and FuzzXxx(*testing.F)
// declarations of the *_test.go files (TestMain is not one).
func CollectRepo(root string) (Repo, error) {
	files, err := gitFiles(root)
	if err != nil {
		return Repo{}, err
	}
	r := Repo{Commit: gitDescribeIn(root)}
	fset := token.NewFileSet()
	for _, f := range files {
		if !strings.HasSuffix(f, ".go") || excludedGoPath(f) {
			continue
		}
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if os.IsNotExist(err) {
			continue // tracked, deleted in the working tree
		}
		if err != nil {
			return Repo{}, fmt.Errorf("results: repository facts: %w", err)
		}
		r.GoFiles++
		r.GoLines += countLines(src)
		if strings.HasSuffix(f, "_test.go") {
			r.TestFiles++
			n, err := countTestFuncs(fset, f, src)
			if err != nil {
				return Repo{}, fmt.Errorf("results: repository facts: %w", err)
			}
			r.TestFuncs += n
		}
	}
	return r, nil
}

func gitCommand(root string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), root, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// gitFiles lists the repository's files under root, slash-separated and
// relative to root, sorted, each once.
func gitFiles(root string) ([]string, error) {
	out, err := gitCommand(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return nil, fmt.Errorf("results: repository facts: %w", err)
	}
	var files []string
	for f := range strings.SplitSeq(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// gitDescribeIn names the commit checked out in root ("" for the working
// directory): `git describe --always`, plus "-dirty" when files other than
// the generated ones (results/, REPORT.md) differ from it, so the run that
// rewrites the results does not mark itself dirty. "unknown" when git fails.
func gitDescribeIn(root string) string {
	out, err := gitCommand(root, "describe", "--always")
	if err != nil {
		return "unknown"
	}
	s := strings.TrimSpace(string(out))
	if s == "" {
		return "unknown"
	}
	changed, err := gitCommand(root, "status", "--porcelain", "--untracked-files=no",
		"--", ":(top)", ":(top,exclude)results", ":(top,exclude)REPORT.md")
	if err != nil {
		return "unknown"
	}
	if len(bytes.TrimSpace(changed)) > 0 {
		s += "-dirty"
	}
	return s
}

func excludedGoPath(p string) bool {
	for _, part := range strings.Split(path.Dir(p), "/") {
		if part == "testdata" || part == "vendor" {
			return true
		}
	}
	return false
}

// countLines counts lines, a last line without a newline included.
func countLines(src []byte) int {
	n := bytes.Count(src, []byte{'\n'})
	if len(src) > 0 && src[len(src)-1] != '\n' {
		n++
	}
	return n
}

// countTestFuncs counts the test, benchmark and fuzz functions declared in a
// test file, by the go tool's rules: a top-level function named
// Test/Benchmark/Fuzz, or that prefix followed by a non-lowercase rune,
// taking one *testing.T, *testing.B or *testing.F.
func countTestFuncs(fset *token.FileSet, name string, src []byte) (int, error) {
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Type.TypeParams != nil {
			continue
		}
		for _, k := range []struct{ prefix, param string }{{"Test", "T"}, {"Benchmark", "B"}, {"Fuzz", "F"}} {
			if isTestName(fn.Name.Name, k.prefix) && takesTesting(fn.Type, k.param) {
				n++
				break
			}
		}
	}
	return n, nil
}

func isTestName(name, prefix string) bool {
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	if len(name) == len(prefix) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(name[len(prefix):])
	return !unicode.IsLower(r)
}

// takesTesting reports whether ft has exactly one parameter, of type
// *pkg.typ (pkg being the testing import, under whatever name).
func takesTesting(ft *ast.FuncType, typ string) bool {
	if ft.Params == nil || len(ft.Params.List) != 1 || len(ft.Params.List[0].Names) > 1 {
		return false
	}
	star, ok := ft.Params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == typ
}
