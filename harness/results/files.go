package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// The files under results/. Each record is written as indented JSON by its
// Write function and read back by its Read function; harness/report renders
// the Markdown (and plots) from what the Read functions return, so the
// Markdown of a published run can always be rendered again from its JSON.

// File names of the records in a results folder.
const (
	BenchFile      = "bench.json"
	VerifyFile     = "verify.json"
	PropertiesFile = "properties.json"
	RepoFile       = "repo.json"
	PeersFile      = "peers.json"
	SoakFile       = "soak.json"
)

// WriteBench writes dir/bench.json. A scenario's Latencies are not written:
// they are summarised into its Distribution (when not set yet), which is
// what the distribution plot is drawn from. b itself is not modified.
func WriteBench(dir string, b Bench) error {
	return writeRecord(dir, BenchFile, Summarised(b))
}

// Summarised is b with each scenario's Latencies summarised into its
// Distribution (when not set yet): b as WriteBench records it, Latencies
// aside. b itself is not modified.
func Summarised(b Bench) Bench {
	b.Scenarios = slices.Clone(b.Scenarios)
	for i := range b.Scenarios {
		if s := &b.Scenarios[i]; s.Distribution == nil && len(s.Latencies) > 0 {
			s.Distribution = DistributionOf(s.Latencies)
		}
	}
	return b
}

// ReadBench loads a bench.json written by WriteBench.
func ReadBench(path string) (Bench, error) {
	var b Bench
	err := readJSON(path, &b)
	return b, err
}

// WriteVerify writes dir/verify.json.
func WriteVerify(dir string, v Verify) error {
	return writeRecord(dir, VerifyFile, v)
}

// ReadVerify loads a verify.json written by WriteVerify.
func ReadVerify(path string) (Verify, error) {
	var v Verify
	err := readJSON(path, &v)
	return v, err
}

// WriteProperties writes dir/properties.json, its rows in the order of
// SortProperties, so the same outcomes give the same file but for the
// header's commit and date. p itself is not modified.
func WriteProperties(dir string, p Properties) error {
	p.Properties = SortProperties(p.Properties)
	return writeRecord(dir, PropertiesFile, p)
}

// ReadProperties loads a properties.json written by WriteProperties.
func ReadProperties(path string) (Properties, error) {
	var p Properties
	err := readJSON(path, &p)
	return p, err
}

// SortProperties returns the property outcomes in their order in results:
// clean runs first, then by property and bug. ps is not modified.
func SortProperties(ps []Property) []Property {
	out := append([]Property(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Bug == "") != (b.Bug == "") {
			return a.Bug == ""
		}
		if a.Property != b.Property {
			return a.Property < b.Property
		}
		return a.Bug < b.Bug
	})
	return out
}

// WritePeers writes dir/peers.json.
func WritePeers(dir string, p Peers) error {
	return writeRecord(dir, PeersFile, p)
}

// ReadPeers loads a peers.json written by WritePeers.
func ReadPeers(path string) (Peers, error) {
	var p Peers
	err := readJSON(path, &p)
	return p, err
}

// WriteSoak writes dir/soak.json.
func WriteSoak(dir string, s Soak) error { return writeRecord(dir, SoakFile, s) }

// ReadSoak loads a soak.json written by WriteSoak.
func ReadSoak(path string) (Soak, error) {
	var s Soak
	err := readJSON(path, &s)
	return s, err
}

// WriteRepo writes dir/repo.json.
func WriteRepo(dir string, r Repo) error {
	return writeRecord(dir, RepoFile, r)
}

// ReadRepo loads a repo.json written by WriteRepo.
func ReadRepo(path string) (Repo, error) {
	var r Repo
	err := readJSON(path, &r)
	return r, err
}

// WriteFile writes data to path through a temporary file and a rename, so
// a reader never sees half a file. Every file under results/ is written
// through it, the rendered ones included.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("results: write %s: %w", path, err)
	}
	return nil
}

// writeRecord creates dir if needed and writes v to dir/name.
func writeRecord(dir, name string, v any) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return writeJSON(filepath.Join(dir, name), v)
}

// writeJSON writes v indented by two spaces, HTML characters unescaped,
// with a final newline.
func writeJSON(path string, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("results: encode %s: %w", path, err)
	}
	return WriteFile(path, b.Bytes())
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("results: read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("results: decode %s: %w", path, err)
	}
	return nil
}
