package report

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// Inputs are what the generated sections are made of: the files under
// results/. A nil field is a file that does not exist (yet).
type Inputs struct {
	Bench  *results.Bench  // bench.json
	Verify *results.Verify // verify.json
	// Properties are properties.json's rows; nil when the file is missing
	// (an empty, non-nil slice is a file without rows).
	Properties []results.Property
	Repo       *results.Repo  // repo.json
	Peers      *results.Peers // peers.json
	// Plots are the file names of the PNGs in results/plots/; the figures
	// section links only plots listed here.
	Plots []string
	// ResultsDir is the slash-separated path from the document to
	// results/, for links ("" means "results").
	ResultsDir string
}

// What writes each results file, for the notices of missing inputs (the
// published runs: `make verify` writes its tables under runs/ instead).
var makers = map[string]string{
	"bench.json":      "make bench",
	"verify.json":     "make verify-full",
	"properties.json": "make verify-full",
	"repo.json":       "make report",
	"peers.json":      "make peers",
}

// LoadInputs reads resultsDir/bench.json, verify.json, properties.json and
// repo.json, each optional, and lists resultsDir/plots/*.png. A file that
// exists but cannot be read or decoded is an error. ResultsDir is set to
// resultsDir as given, which is right for a document in the working
// directory; Regenerate sets it relative to the document.
func LoadInputs(resultsDir string) (Inputs, error) {
	in := Inputs{ResultsDir: filepath.ToSlash(filepath.Clean(resultsDir))}
	var err error
	if in.Bench, err = loadOptional(resultsDir, results.BenchFile, results.ReadBench); err != nil {
		return in, err
	}
	if in.Verify, err = loadOptional(resultsDir, results.VerifyFile, results.ReadVerify); err != nil {
		return in, err
	}
	ps, err := loadOptional(resultsDir, results.PropertiesFile, results.ReadProperties)
	if err != nil {
		return in, err
	}
	if ps != nil {
		in.Properties = ps.Properties
		if in.Properties == nil {
			in.Properties = []results.Property{}
		}
	}
	if in.Repo, err = loadOptional(resultsDir, results.RepoFile, results.ReadRepo); err != nil {
		return in, err
	}
	if in.Peers, err = loadOptional(resultsDir, results.PeersFile, results.ReadPeers); err != nil {
		return in, err
	}
	entries, err := os.ReadDir(filepath.Join(resultsDir, "plots"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return in, fmt.Errorf("report: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".png") {
			in.Plots = append(in.Plots, e.Name())
		}
	}
	return in, nil
}

// loadOptional reads dir/name with read, or returns nil when it does not
// exist.
func loadOptional[T any](dir, name string, read func(path string) (T, error)) (*T, error) {
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	v, err := read(p)
	if err != nil {
		return nil, err
	}
	return &v, nil
}
