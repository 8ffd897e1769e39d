package scenario

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SuitesFile is the table of suites in the scenarios folder: for each
// suite, the scenarios it runs, in order. It is the one place suite
// membership is written.
const SuitesFile = "suites.yaml"

// Suites.
const (
	// SuiteVerify is the fault suite (KindCheck scenarios): `make verify`
	// runs it in smoke mode (the bounded set), `make verify-full` at full
	// length with the scenarios of SuiteVerifyFullOnly after it.
	SuiteVerify = "verify"
	// SuiteVerifyFullOnly lists the fault scenarios only the full run has.
	SuiteVerifyFullOnly = "verify-full-only"
	// SuiteVerifyFull is no key of the table: it is SuiteVerify followed
	// by SuiteVerifyFullOnly, the set `make verify-full` runs.
	SuiteVerifyFull = "verify-full"
	SuiteBench      = "bench"       // the benchmarks (KindBench and KindSearch)
	SuiteBenchSmoke = "bench-smoke" // the benchmarks `make verify` runs in smoke mode
	SuitePeers      = "peers"       // the comparison of subjects (`make peers`)
	SuiteSoak       = "soak"        // the long run with resources sampled (`make soak`)
)

// suiteKinds are the scenario kinds each suite of the table may hold.
var suiteKinds = map[string][]string{
	SuiteVerify:         {KindCheck},
	SuiteVerifyFullOnly: {KindCheck},
	SuiteBench:          {KindBench, KindSearch},
	SuiteBenchSmoke:     {KindBench, KindSearch},
	SuitePeers:          {KindCheck, KindBench, KindSearch},
	SuiteSoak:           {KindCheck},
}

// Suite lists the scenarios of suite name, in the order they run.
func Suite(name string) ([]string, error) {
	all, err := Suites()
	if err != nil {
		return nil, err
	}
	if name == SuiteVerifyFull {
		return append(slices.Clone(all[SuiteVerify]), all[SuiteVerifyFullOnly]...), nil
	}
	names, ok := all[name]
	if !ok {
		return nil, fmt.Errorf("scenario: no suite %q in %s (want %s, %s, %s, %s, %s or %s)", name, SuitesFile, SuiteVerify, SuiteVerifyFull, SuiteBench, SuiteBenchSmoke, SuitePeers, SuiteSoak)
	}
	return names, nil
}

// Suites reads the suites table of the scenarios folder. Each suite must be
// one of the known ones and list scenarios of the folder, each once, of a
// kind the suite runs; each scenario must be in the fault suite, the
// benchmarks or the soak, so none is left out of every run.
func Suites() (map[string][]string, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, SuitesFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: suites: %w", err)
	}
	var all map[string][]string
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&all); err != nil {
		return nil, fmt.Errorf("scenario: parse %s: %w", path, err)
	}
	names, err := Names()
	if err != nil {
		return nil, err
	}
	kinds := map[string]string{}
	for _, n := range names {
		s, err := Load(n, false)
		if err != nil {
			return nil, err
		}
		kinds[n] = s.Kind
	}
	for suite, members := range all {
		want, ok := suiteKinds[suite]
		if !ok {
			return nil, fmt.Errorf("scenario: %s: unknown suite %q (want %s, %s, %s, %s, %s or %s)", path, suite, SuiteVerify, SuiteVerifyFullOnly, SuiteBench, SuiteBenchSmoke, SuitePeers, SuiteSoak)
		}
		seen := map[string]bool{}
		for i, n := range members {
			field := fmt.Sprintf("%s[%d]", suite, i)
			kind, ok := kinds[n]
			switch {
			case !ok:
				return nil, fmt.Errorf("scenario: %s: %s %q: no such scenario in %s", path, field, n, dir)
			case seen[n]:
				return nil, fmt.Errorf("scenario: %s: %s %q: listed twice", path, field, n)
			case !slices.Contains(want, kind):
				return nil, fmt.Errorf("scenario: %s: %s %q: a %s scenario, the suite runs %s", path, field, n, kind, strings.Join(want, " or "))
			}
			seen[n] = true
		}
	}
	for _, n := range names {
		inVerify, inFull := slices.Contains(all[SuiteVerify], n), slices.Contains(all[SuiteVerifyFullOnly], n)
		if inVerify && inFull {
			return nil, fmt.Errorf("scenario: %s: scenario %q is in both %s and %s", path, n, SuiteVerify, SuiteVerifyFullOnly)
		}
		if !inVerify && !inFull && !slices.Contains(all[SuiteBench], n) && !slices.Contains(all[SuiteSoak], n) {
			return nil, fmt.Errorf("scenario: %s: scenario %q is in none of %s, %s, %s and %s: no suite runs it", path, n, SuiteVerify, SuiteVerifyFullOnly, SuiteBench, SuiteSoak)
		}
	}
	return all, nil
}
