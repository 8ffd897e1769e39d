package report

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The marker engine: it finds the generated sections of a document by
// their markers and replaces or compares their bodies. It knows nothing of
// what a section says (sections.go renders them).

var (
	markerRe   = regexp.MustCompile(`^<!-- (/?)generated:([a-z0-9][a-z0-9-]*) -->$`)
	fenceRe    = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")
	markerLike = regexp.MustCompile(`^<!--\s*/?\s*generated\s*:`)
)

// span is one generated section of a document: the line indexes of its
// markers.
type span struct {
	name        string
	open, close int
}

// parseMarkers finds the generated sections of a document's lines. Lines in
// fenced code blocks outside sections are prose (a marker shown as an
// example is not one).
func parseMarkers(lines []string) ([]span, error) {
	var spans []span
	seen := map[string]bool{}
	cur := -1   // index in spans of the open section, -1 outside
	fence := "" // the open fence outside sections, "" outside a fence
	for i, raw := range lines {
		line := strings.TrimRight(raw, " \t\r")
		if cur < 0 {
			if m := fenceRe.FindStringSubmatch(line); m != nil {
				switch {
				case fence == "":
					fence = m[1]
					continue
				case m[1][0] == fence[0] && len(m[1]) >= len(fence) && strings.TrimSpace(line[len(m[0]):]) == "":
					fence = ""
					continue
				}
			}
			if fence != "" {
				continue
			}
		}
		m := markerRe.FindStringSubmatch(strings.TrimLeft(line, " \t"))
		if m == nil {
			if markerLike.MatchString(strings.TrimLeft(line, " \t")) {
				return nil, fmt.Errorf("line %d: malformed marker %q (want <!-- generated:NAME --> or <!-- /generated:NAME -->)", i+1, line)
			}
			continue
		}
		closing, name := m[1] == "/", m[2]
		switch {
		case !closing && cur >= 0:
			return nil, fmt.Errorf("line %d: section %q opened inside section %q (opened line %d): sections do not nest",
				i+1, name, spans[cur].name, spans[cur].open+1)
		case !closing && seen[name]:
			return nil, fmt.Errorf("line %d: section %q appears twice", i+1, name)
		case !closing:
			seen[name] = true
			spans = append(spans, span{name: name, open: i, close: -1})
			cur = len(spans) - 1
		case cur < 0:
			return nil, fmt.Errorf("line %d: section %q closed but not open", i+1, name)
		case spans[cur].name != name:
			return nil, fmt.Errorf("line %d: section %q closed while section %q (opened line %d) is open",
				i+1, name, spans[cur].name, spans[cur].open+1)
		default:
			spans[cur].close = i
			cur = -1
		}
	}
	if cur >= 0 {
		return nil, fmt.Errorf("line %d: section %q is never closed", spans[cur].open+1, spans[cur].name)
	}
	return spans, nil
}

// bodyLines are the lines written between a section's markers: the body
// between blank lines, so that Markdown sees it as blocks of its own.
func bodyLines(body string) []string {
	body = strings.Trim(body, "\n")
	out := []string{""}
	if body != "" {
		out = append(out, strings.Split(body, "\n")...)
		out = append(out, "")
	}
	return out
}

// sectionsFor parses doc and checks its markers against sections.
func sectionsFor(doc []byte, sections map[string]string) ([]string, []span, error) {
	lines := strings.Split(string(doc), "\n")
	spans, err := parseMarkers(lines)
	if err != nil {
		return nil, nil, fmt.Errorf("report: %w", err)
	}
	inDoc := map[string]bool{}
	var unknown []string
	for _, s := range spans {
		inDoc[s.name] = true
		if _, ok := sections[s.name]; !ok {
			unknown = append(unknown, s.name)
		}
	}
	var unplaced []string
	for name := range sections {
		if !inDoc[name] {
			unplaced = append(unplaced, name)
		}
	}
	slices.Sort(unplaced)
	var errs []error
	if len(unknown) > 0 {
		errs = append(errs, fmt.Errorf("report: the document has markers for unknown sections: %s", strings.Join(unknown, ", ")))
	}
	if len(unplaced) > 0 {
		errs = append(errs, fmt.Errorf("report: the document has no markers for sections: %s (add <!-- generated:NAME --> and <!-- /generated:NAME --> lines)",
			strings.Join(unplaced, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return lines, spans, nil
}

// Update replaces the body of each marked section of doc with
// sections[NAME], leaving every other line as it is. It is an error when a
// marker in doc names no section, a section has no marker in doc, or the
// markers are malformed, unbalanced, nested or repeated. Update is
// idempotent.
func Update(doc []byte, sections map[string]string) ([]byte, error) {
	lines, spans, err := sectionsFor(doc, sections)
	if err != nil {
		return nil, err
	}
	var out []string
	prev := 0
	for _, s := range spans {
		out = append(out, lines[prev:s.open+1]...)
		out = append(out, bodyLines(sections[s.name])...)
		prev = s.close
	}
	out = append(out, lines[prev:]...)
	return []byte(strings.Join(out, "\n")), nil
}

// SectionDiff is a generated section whose body in a document differs from
// what Update writes.
type SectionDiff struct {
	Name string
	// Line is the first differing line (1-based, in the document), Have
	// the document's line there and Want the line Update writes there (the
	// closing marker, where one side ends before the other).
	Line       int
	Have, Want string
}

// Diff lists the sections of doc, in document order, whose bodies differ
// from what Update(doc, sections) writes; none when doc is current. Its
// errors are Update's.
func Diff(doc []byte, sections map[string]string) ([]SectionDiff, error) {
	lines, spans, err := sectionsFor(doc, sections)
	if err != nil {
		return nil, err
	}
	var diffs []SectionDiff
	for _, s := range spans {
		have, want := lines[s.open+1:s.close], bodyLines(sections[s.name])
		if slices.Equal(have, want) {
			continue
		}
		// Compare up to and including the closing marker: one side may end
		// where the other goes on.
		have, want = append(slices.Clip(have), lines[s.close]), append(want, lines[s.close])
		i := 0
		for i < len(have)-1 && i < len(want)-1 && have[i] == want[i] {
			i++
		}
		diffs = append(diffs, SectionDiff{Name: s.name, Line: s.open + 2 + i, Have: have[i], Want: want[i]})
	}
	return diffs, nil
}
