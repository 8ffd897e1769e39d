package report

import (
	"strings"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// WriteProperties writes dir/properties.md: the outcome of each property
// run, clean and with a planted bug, and the counterexamples in full. The
// rows are in the order of results.SortProperties.
func WriteProperties(dir string, p results.Properties) error {
	p.Properties = results.SortProperties(p.Properties)
	return writeMarkdown(dir, "properties.md", propertiesMarkdown(p))
}

func propertiesMarkdown(p results.Properties) []byte {
	var md mdWriter
	md.documentHead("ChronicleWeaver property tests", "the property tests (`go test ./properties/`)", p.Header)

	md.heading(2, "Results")
	md.para("Clean runs must pass every check. With a planted bug switched on, the property must fail: " +
		"checks is then the number of checks run up to and including the first failing one, " +
		"and the shrunk steps are the actions (or requests) of the minimised counterexample.")
	t := table{head: []string{"Property", "Bug", "Checks", "Failed", "Verdict", "Shrunk steps"}, align: "llrllr"}
	var bad []string
	for _, r := range p.Properties {
		c := propertyCellsOf(r)
		if c.unexpected != "" {
			bad = append(bad, c.unexpected)
		}
		t.add(esc(r.Property), c.bug, fmtCount(int64(r.Checks)), c.failed, c.verdict, c.shrunk)
	}
	md.table(t)
	switch {
	case len(p.Properties) == 0:
		md.para("No property was run.")
	case len(bad) > 0:
		md.para("**Unexpected outcome: %s.**", esc(strings.Join(bad, "; ")))
	default:
		md.para("Every clean run passed and every planted bug was caught.")
	}

	first := true
	for _, r := range p.Properties {
		if r.Example == "" {
			continue
		}
		if first {
			md.heading(2, "Counterexamples")
			first = false
		}
		title := r.Property
		if r.Bug != "" {
			title += " with " + r.Bug
		}
		md.heading(3, esc(title))
		md.block(fence(r.Example))
	}
	return md.bytes()
}

// propertyCells are the cells of a property run in the tables.
type propertyCells struct {
	bug     string // "none" for the clean run
	failed  string // "yes" or "no"
	verdict string // pass or caught as expected; in bold when not
	shrunk  string // the shrunk steps of a failure, else a dash
	example string // the counterexample, shortened, or a dash
	// unexpected names the run in plain text when its outcome is not the
	// expected one (a clean run failed, a planted bug was not caught).
	unexpected string
}

func propertyCellsOf(p results.Property) propertyCells {
	c := propertyCells{bug: "none", failed: "no", verdict: "pass", shrunk: dash, example: dash}
	if p.Bug != "" {
		c.bug = code(p.Bug)
		c.verdict = "caught"
		if !p.Failed {
			c.verdict = "**NOT caught**"
			c.unexpected = p.Property + " with " + p.Bug
		}
	} else if p.Failed {
		c.verdict = "**FAILED**"
		c.unexpected = p.Property
	}
	if p.Failed {
		c.failed = "yes"
		c.shrunk = fmtCount(int64(p.ShrunkSteps))
	}
	if p.Example != "" {
		c.example = code(shorten(p.Example, exampleLen))
	}
	return c
}

// fence is s as a fenced code block, the fence longer than any run of
// backticks inside.
func fence(s string) string {
	f := strings.Repeat("`", max(3, longestRun(s, '`')+1))
	return f + "text\n" + strings.TrimRight(s, "\n") + "\n" + f
}
