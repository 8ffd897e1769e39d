package report

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// Number formats. Every number in the Markdown goes through one of these,
// so the same data always gives the same bytes.

// dash stands for "no data".
const dash = "—"

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// thousands formats n with comma thousands separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fixed formats v with prec decimals and thousands separators in the
// integer part; non-finite values print as a dash.
func fixed(v float64, prec int) string {
	if !finite(v) {
		return dash
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-") // no negative zero
	}
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil { // beyond int64: leave unseparated
		return sign + s
	}
	out := sign + thousands(n)
	if hasFrac {
		out += "." + frac
	}
	return out
}

func fmtRate(v float64) string    { return fixed(v, 0) } // events/s
func fmtReqRate(v float64) string { return fixed(v, 1) } // requests/s
func fmtMS(v float64) string      { return fixed(v, 2) }
func fmtSec(v float64) string     { return fixed(v, 2) }
func fmtCount(n int64) string     { return thousands(n) }
func fmtRatio(v float64) string {
	if !finite(v) {
		return dash
	}
	return fixed(v, 2) + "×"
}

// fmtPercent formats a fraction (0.0123) as a percentage ("1.23%").
func fmtPercent(frac float64) string {
	if !finite(frac) {
		return dash
	}
	return fixed(frac*100, 2) + "%"
}

// fmtPct formats a latency of a distribution; a distribution without
// samples has no percentiles.
func fmtPct(p results.Percentiles, v float64) string {
	if p.N == 0 {
		return dash
	}
	return fmtMS(v)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**NO**"
}

func orDash(s string) string {
	if s == "" {
		return dash
	}
	return s
}

// ratio is a/b, NaN when b is 0 (printed as a dash).
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// shorten cuts s to at most n runes, marking the cut with an ellipsis.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// Markdown text.

// esc escapes raw text for Markdown prose and table cells: characters that
// could start emphasis, links, HTML or code, and the table separator.
func esc(s string) string {
	s = strings.Join(strings.Fields(s), " ") // one line
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '\\', '|', '*', '_', '`', '<', '>', '[', ']', '#', '~':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// codeSpan wraps s in a code span, with a fence longer than any run of
// backticks inside it.
func codeSpan(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return dash
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// longestRun is the length of the longest run of c in s.
func longestRun(s string, c rune) int {
	longest, run := 0, 0
	for _, r := range s {
		if r == c {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// code is a code span for a table cell: GitHub needs the table separator
// escaped even inside code spans (the backslash does not show).
func code(s string) string {
	return strings.ReplaceAll(codeSpan(s), "|", `\|`)
}

// table is a GitHub-flavoured Markdown table; cells are Markdown.
type table struct {
	head  []string
	align string // one of l, r, c per column; missing: l
	rows  [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t table) render(b *bytes.Buffer) {
	line := func(cells []string) {
		b.WriteString("|")
		for i := range t.head {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			if c == "" {
				c = " "
			}
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	line(t.head)
	b.WriteString("|")
	for i := range t.head {
		a := byte('l')
		if i < len(t.align) {
			a = t.align[i]
		}
		switch a {
		case 'r':
			b.WriteString(" ---: |")
		case 'c':
			b.WriteString(" :---: |")
		default:
			b.WriteString(" --- |")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		line(r)
	}
}

// mdWriter builds a Markdown document of blocks separated by blank lines.
type mdWriter struct{ b bytes.Buffer }

func (m *mdWriter) block(s string) {
	if m.b.Len() > 0 {
		m.b.WriteString("\n")
	}
	m.b.WriteString(strings.TrimRight(s, "\n") + "\n")
}

func (m *mdWriter) heading(level int, text string) {
	m.block(strings.Repeat("#", level) + " " + text)
}

func (m *mdWriter) para(format string, args ...any) { m.block(fmt.Sprintf(format, args...)) }

func (m *mdWriter) table(t table) {
	var b bytes.Buffer
	t.render(&b)
	m.block(b.String())
}

func (m *mdWriter) bullets(items []string) {
	if len(items) == 0 {
		return
	}
	m.block("- " + strings.Join(items, "\n- "))
}

func (m *mdWriter) bytes() []byte { return m.b.Bytes() }

// documentHead writes the head of a generated document: its title, that it
// is generated from source (Markdown), and the run's header.
func (m *mdWriter) documentHead(title, source string, h results.Header) {
	m.heading(1, title)
	m.para("_Generated by `harness/report` from %s: regenerate it, do not edit it._", source)
	writeHeader(m, h)
}

// anchor is GitHub's heading anchor for a heading text of plain words.
func anchor(heading string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(heading) {
		switch {
		case c == ' ':
			b.WriteByte('-')
		case c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Files.

// fileName turns a scenario name into a safe file name part.
func fileName(name string) string {
	var b strings.Builder
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "unnamed"
	}
	return b.String()
}
