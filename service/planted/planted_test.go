package planted_test

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// serviceRoot is the service/ directory (tests run in their package's).
const serviceRoot = ".."

// harnessOnly are the bugs set up by the harness, with no code in service/.
var harnessOnly = []string{planted.RedisNoAOF}

// pkgFiles are one directory's non-test Go files in the default build and
// in a build with the plantedbugs tag.
type pkgFiles struct {
	dir              string
	isDefault, isTag map[string]bool
}

func listPackages(t *testing.T) []pkgFiles {
	t.Helper()
	plain, tagged := build.Default, build.Default
	plain.BuildTags = nil
	tagged.BuildTags = []string{"plantedbugs"}
	var out []pkgFiles
	err := filepath.WalkDir(serviceRoot, func(dir string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		p := pkgFiles{dir: dir, isDefault: map[string]bool{}, isTag: map[string]bool{}}
		for ctx, set := range map[*build.Context]map[string]bool{&plain: p.isDefault, &tagged: p.isTag} {
			bp, err := ctx.ImportDir(dir, 0)
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			if err != nil {
				return err
			}
			for _, f := range bp.GoFiles {
				set[f] = true
			}
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 5 {
		t.Fatalf("found %d packages under %s: the walk is broken", len(out), serviceRoot)
	}
	return out
}

func parse(t *testing.T, fset *token.FileSet, path string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// topLevelNames are the names a file declares at package level, methods
// left out (their names are shared with production methods).
func topLevelNames(f *ast.File) []string {
	var out []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				out = append(out, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					out = append(out, s.Name.Name)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						out = append(out, n.Name)
					}
				}
			}
		}
	}
	return out
}

// catalogueNames are the Go names of the bugs in package planted (the
// constants whose value is a bug's name).
func catalogueNames(t *testing.T, fset *token.FileSet) []string {
	t.Helper()
	f := parse(t, fset, filepath.Join(serviceRoot, "planted", "planted.go"))
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, _ := strconv.Unquote(lit.Value); slices.Contains(planted.Names(), s) {
						out = append(out, vs.Names[i].Name)
					}
				}
			}
		}
		return true
	})
	return out
}

// TestDefaultBuildHasNoPlantedBug checks, with the build constraints Go
// applies, that no file of the default build outside package planted (the
// catalogue of names and the refusal) names a bug or uses anything declared
// only in plantedbugs builds; and that each bug of the service lives in a
// file of its own, planted_<bug>.go, built only with the tag.
func TestDefaultBuildHasNoPlantedBug(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	pkgs := listPackages(t)

	// Names declared only in plantedbugs builds, and the bugs' own.
	forbidden := map[string]string{}
	for _, n := range catalogueNames(t, fset) {
		forbidden[n] = "planted/planted.go"
	}
	if len(forbidden) != len(planted.Names()) {
		t.Fatalf("found %d bug constants in planted.go, want %d", len(forbidden), len(planted.Names()))
	}
	tagOnly := map[string]bool{} // path -> true
	for _, p := range pkgs {
		both := map[string]bool{}
		for f := range p.isDefault {
			for _, n := range topLevelNames(parse(t, fset, filepath.Join(p.dir, f))) {
				both[n] = true
			}
		}
		for f := range p.isTag {
			if p.isDefault[f] {
				continue
			}
			path := filepath.Join(p.dir, f)
			tagOnly[path] = true
			for _, n := range topLevelNames(parse(t, fset, path)) {
				if !both[n] { // not a stub with a default-build counterpart
					forbidden[n] = path
				}
			}
		}
	}

	// Each bug of the service in its own file behind the tag.
	for _, bug := range planted.Names() {
		if slices.Contains(harnessOnly, bug) {
			continue
		}
		name := "planted_" + strings.ReplaceAll(bug, "-", "_") + ".go"
		found := false
		for path := range tagOnly {
			found = found || filepath.Base(path) == name
		}
		if !found {
			t.Errorf("planted bug %s: no file %s built only with -tags plantedbugs", bug, name)
		}
	}
	for _, p := range pkgs {
		for f := range p.isDefault {
			if strings.HasPrefix(f, "planted_") {
				t.Errorf("%s: a planted_ file in the default build (it needs //go:build plantedbugs)", filepath.Join(p.dir, f))
			}
		}
	}

	// No default-build file outside package planted refers to any of it.
	for _, p := range pkgs {
		if filepath.Base(p.dir) == "planted" {
			continue
		}
		for f := range p.isDefault {
			path := filepath.Join(p.dir, f)
			ast.Inspect(parse(t, fset, path), func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.Ident:
					if from, ok := forbidden[n.Name]; ok {
						t.Errorf("%s: default build refers to %s (a planted bug's, from %s)", fset.Position(n.Pos()), n.Name, from)
					}
				case *ast.BasicLit:
					if n.Kind == token.STRING {
						for _, bug := range planted.Names() {
							if strings.Contains(n.Value, bug) {
								t.Errorf("%s: default build names the planted bug %s", fset.Position(n.Pos()), bug)
							}
						}
					}
				}
				return true
			})
		}
	}
	if len(forbidden) <= len(planted.Names()) {
		t.Errorf("no declaration found in plantedbugs-only files: the scan is broken")
	}
}

// TestCheck: no selection passes; an unknown one or (in a default build)
// any one is refused with a line naming the setting.
func TestCheck(t *testing.T) {
	t.Parallel()
	if err := planted.Check(""); err != nil {
		t.Fatalf("Check(\"\") = %v", err)
	}
	err := planted.Check("no-such-bug")
	if err == nil || !strings.Contains(err.Error(), planted.EnvVar) {
		t.Fatalf("Check(unknown) = %v", err)
	}
	err = planted.Check(planted.NoLedger)
	if planted.Enabled != (err == nil) {
		t.Fatalf("Check(%s) = %v in a build with Enabled=%v", planted.NoLedger, err, planted.Enabled)
	}
	if err != nil && !strings.Contains(err.Error(), "without planted bugs") {
		t.Fatalf("Check(%s) = %v: should say the binary has no planted bugs", planted.NoLedger, err)
	}
}
