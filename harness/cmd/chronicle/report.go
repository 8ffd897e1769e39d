package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/chronicleweaver/chronicleweaver/harness/report"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// reportCmd renders results: by default it rewrites the generated sections
// of REPORT.md from results/*.json (`make report`), or with --check says
// whether they are current without writing anything; with --md it renders
// results/NAME.md (and, for bench, results/plots/) from results/NAME.json
// instead, the Markdown of the records the tests write (`make verify`,
// `make properties`).
//
//	chronicle report [--results results] [--doc REPORT.md] [--check] [--repo]
//	chronicle report --md verify,properties [--results results]
func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fs.String("results", "results", "folder of bench.json, verify.json, properties.json, repo.json and plots/")
	doc := fs.String("doc", "REPORT.md", "document whose generated sections are rewritten")
	check := fs.Bool("check", false, "write nothing; fail when the document's generated sections are stale")
	repo := fs.Bool("repo", false, "first measure the repository (commit, Go files, tests) into RESULTS/repo.json")
	md := fs.String("md", "", "comma-separated documents to render from their records instead ("+strings.Join(report.Documents, ", ")+
		"): RESULTS/NAME.md from RESULTS/NAME.json; REPORT.md is left alone")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *md != "" {
		if *check || *repo {
			return errors.New("report: --md renders results/*.md only: it takes neither --check nor --repo")
		}
		names := strings.Split(*md, ",")
		if err := report.Render(*dir, names...); err != nil {
			return err
		}
		for _, n := range names {
			fmt.Printf("report: wrote %s\n", filepath.Join(*dir, n+".md"))
		}
		return nil
	}
	if *check && *repo {
		return errors.New("report: --check writes nothing, --repo writes repo.json: use one")
	}
	if *repo {
		r, err := results.CollectRepo(filepath.Dir(*doc))
		if err != nil {
			return err
		}
		if err := results.WriteRepo(*dir, r); err != nil {
			return err
		}
		fmt.Printf("report: wrote %s (commit %s, %d Go files, %d test files, %d test functions)\n",
			filepath.Join(*dir, results.RepoFile), r.Commit, r.GoFiles, r.TestFiles, r.TestFuncs)
	}
	g, err := report.Regenerate(*doc, *dir)
	if err != nil {
		return err
	}
	if *check {
		if len(g.Stale) == 0 {
			fmt.Printf("report: %s is current\n", *doc)
			return nil
		}
		names := make([]string, len(g.Stale))
		for i, d := range g.Stale {
			names[i] = d.Name
			fmt.Fprintf(os.Stderr, "%s:%d: section %s differs\n  have: %q\n  want: %q\n", *doc, d.Line, d.Name, d.Have, d.Want)
		}
		return fmt.Errorf("report: %s is stale in %d section(s): %s; run `make report`",
			*doc, len(names), strings.Join(names, ", "))
	}
	wrote, err := g.Write()
	if err != nil {
		return err
	}
	if !wrote {
		fmt.Printf("report: %s already current\n", *doc)
		return nil
	}
	names := make([]string, len(g.Stale))
	for i, d := range g.Stale {
		names[i] = d.Name
	}
	fmt.Printf("report: rewrote %s (%s)\n", *doc, strings.Join(names, ", "))
	return nil
}
