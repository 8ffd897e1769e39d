// Package report renders results: the Markdown documents and plots under
// results/ (bench.md, verify.md, properties.md, plots/) and the generated
// sections of REPORT.md, all from the records of harness/results (the
// JSON files under results/).
//
// It only renders. It never computes a verdict (that is the checker's),
// never measures (that is harness/results'), and never invents a number:
// everything it writes comes from the records it is given, so the same
// records always give the same bytes. Only the command line
// (harness/cmd/chronicle) imports it: the packages that produce results
// write records, and `chronicle report` renders them.
package report

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// Documents are the names Render knows: each renders NAME.md (bench also
// its plots) from results' NAME.json.
var Documents = []string{"bench", "verify", "properties", "peers", "soak"}

// Render renders the documents names (of Documents) in dir from the
// records there: dir/bench.json gives dir/bench.md and dir/plots/,
// dir/verify.json gives dir/verify.md and dir/properties.json gives
// dir/properties.md. A missing record is an error.
func Render(dir string, names ...string) error {
	for _, name := range names {
		var err error
		switch name {
		case "bench":
			var b results.Bench
			if b, err = results.ReadBench(filepath.Join(dir, results.BenchFile)); err == nil {
				err = WriteBench(dir, b)
			}
		case "verify":
			var v results.Verify
			if v, err = results.ReadVerify(filepath.Join(dir, results.VerifyFile)); err == nil {
				err = WriteVerify(dir, v)
			}
		case "properties":
			var p results.Properties
			if p, err = results.ReadProperties(filepath.Join(dir, results.PropertiesFile)); err == nil {
				err = WriteProperties(dir, p)
			}
		case "peers":
			var p results.Peers
			if p, err = results.ReadPeers(filepath.Join(dir, results.PeersFile)); err == nil {
				err = WritePeers(dir, p)
			}
		case "soak":
			var s results.Soak
			if s, err = results.ReadSoak(filepath.Join(dir, results.SoakFile)); err == nil {
				err = WriteSoak(dir, s)
			}
		default:
			err = fmt.Errorf("report: no document %q (want one of %v)", name, Documents)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeMarkdown creates dir if needed and writes md to dir/name.
func writeMarkdown(dir, name string, md []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return results.WriteFile(filepath.Join(dir, name), md)
}
