package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// REPORT.md mixes hand-written prose with generated sections. A generated
// section is the lines between two markers, each alone on its line:
//
//	<!-- generated:NAME -->
//	... rewritten by `make report` ...
//	<!-- /generated:NAME -->
//
// Sections (sections.go) renders every section from the files under
// results/; Update and Diff (markers.go, the marker engine) replace or
// compare the bodies in a document; Regenerate does both for a document on
// disk (`chronicle report`, and the test that keeps REPORT.md current). Nothing in a section is typed by hand: every number comes from
// results/*.json, and an input that is missing renders as a one-line notice
// naming the file and the command that writes it.

// Regeneration is a document as it is on disk and as `make report` writes
// it.
type Regeneration struct {
	Path     string
	Old, New []byte
	Stale    []SectionDiff // sections that differ, in document order
}

// Regenerate reads the document at docPath and the results in resultsDir
// (links in the document point to resultsDir relative to the document),
// and renders what the document's generated sections should be. It writes
// nothing.
func Regenerate(docPath, resultsDir string) (Regeneration, error) {
	g := Regeneration{Path: docPath}
	old, err := os.ReadFile(docPath)
	if err != nil {
		return g, fmt.Errorf("report: %w", err)
	}
	g.Old = old
	in, err := LoadInputs(resultsDir)
	if err != nil {
		return g, err
	}
	rel, err := relPath(filepath.Dir(docPath), resultsDir)
	if err != nil {
		return g, err
	}
	in.ResultsDir = rel
	sections := Sections(in)
	if g.New, err = Update(old, sections); err != nil {
		return g, fmt.Errorf("%s: %w", docPath, err)
	}
	if g.Stale, err = Diff(old, sections); err != nil {
		return g, fmt.Errorf("%s: %w", docPath, err)
	}
	return g, nil
}

// Write writes the regenerated document when it differs from the one on
// disk; it reports whether it wrote.
func (g Regeneration) Write() (bool, error) {
	if bytes.Equal(g.Old, g.New) {
		return false, nil
	}
	return true, results.WriteFile(g.Path, g.New)
}

func relPath(from, to string) (string, error) {
	af, err := filepath.Abs(from)
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	at, err := filepath.Abs(to)
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	rel, err := filepath.Rel(af, at)
	if err != nil {
		return "", fmt.Errorf("report: results folder relative to the document: %w", err)
	}
	return filepath.ToSlash(rel), nil
}
