// Package progress shows what a long run of the harness is doing: lasting
// lines (a phase begins, a fault, a verdict) and a status that the next one
// replaces (where the load stands, a rate-search step).
//
// On a terminal the status is one live line with a bar of the items done
// (schollz/progressbar), kept below the lasting lines. Elsewhere (CI, go
// test, a pipe) there is no control character: a status is a plain line,
// printed when nothing was printed for Every.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Every is how often a status becomes a plain line when nothing else was
// printed meanwhile (plain output only).
const Every = 10 * time.Second

// Printer prints lasting lines and statuses. It is safe for concurrent use.
type Printer struct {
	mu sync.Mutex
	// plain output: line prints one line; every is the status interval.
	line  func(string)
	every time.Duration
	last  time.Time // when the last plain line was printed

	// live output (a terminal): the bar under the lasting lines.
	w     io.Writer
	fd    int
	bar   *progressbar.ProgressBar
	total int    // items in all (0: not counted)
	done  int    // items done
	desc  string // the current status
	drawn bool   // a status without bar is on the screen
	start time.Time
}

// New prints to f, with a live status line when f is a terminal (and TERM
// is not "dumb"); lasting lines are prefixed with the time since New.
func New(f *os.File) *Printer {
	p := &Printer{start: time.Now(), every: Every, w: f}
	if term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb" {
		p.fd = int(f.Fd())
		return p
	}
	p.line = func(s string) { fmt.Fprintln(f, s) }
	return p
}

// Lines prints every line through logf (a testing.T's Logf, say), statuses
// as plain lines at most once per every of silence.
func Lines(logf func(format string, args ...any), every time.Duration) *Printer {
	return &Printer{start: time.Now(), every: every, line: func(s string) { logf("%s", s) }}
}

// Live reports whether statuses are shown as a live line.
func (p *Printer) Live() bool { return p.line == nil }

// Logf prints a lasting line.
func (p *Printer) Logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.Live() {
		p.line(s)
		p.last = time.Now()
		return
	}
	p.clear()
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), s)
	p.render()
}

// clear erases the live line (p.mu held).
func (p *Printer) clear() {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[2K")
		p.drawn = false
	}
}

// Status replaces the status. A plain printer prints it when nothing was
// printed for its interval.
func (p *Printer) Status(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.desc = s
	if !p.Live() {
		if time.Since(p.last) >= p.every {
			p.line(p.counted(s))
			p.last = time.Now()
		}
		return
	}
	p.render()
}

// Items sets how many items (scenarios, controls) the run has in all; the
// status then counts them ("[3/10]") and the live bar shows them (a run
// that never calls Items shows its status without a bar).
func (p *Printer) Items(total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.done = total, 0
	p.clear()
	p.bar = nil
	p.render()
}

// ItemDone counts one item done.
func (p *Printer) ItemDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.render()
}

// Close erases the live line; lines printed after it have none below
// them until the next status.
func (p *Printer) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.bar, p.desc = nil, ""
}

// counted prefixes s with the items done when they are counted.
func (p *Printer) counted(s string) string {
	if p.total > 0 {
		return fmt.Sprintf("[%d/%d] %s", min(p.done+1, p.total), p.total, s)
	}
	return s
}

// render draws the live line (p.mu held).
func (p *Printer) render() {
	if !p.Live() || p.desc == "" {
		return
	}
	width := 100
	if w, _, err := term.GetSize(p.fd); err == nil && w > 0 {
		width = w
	}
	desc := fmt.Sprintf("%s %s", fmtElapsed(time.Since(p.start)), p.desc)
	if p.total == 0 {
		// No items counted (one run): the status alone, no bar.
		fmt.Fprintf(p.w, "\r\033[2K%s", cut(desc, width-1))
		p.drawn = true
		return
	}
	const barWidth = 10
	// "desc |██████    | (3/10)": the count and the bar take about 25 columns.
	desc = cut(desc, width-barWidth-16)
	if p.bar == nil {
		p.bar = progressbar.NewOptions(p.total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(barWidth),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionSetSpinnerChangeInterval(0),
			progressbar.OptionUseANSICodes(true),
			progressbar.OptionSetDescription(desc),
		)
	}
	p.bar.Describe(desc)
	_ = p.bar.Set(p.done)
}

// cut shortens s to n columns (runes), marking the cut with "…".
func cut(s string, n int) string {
	r := []rune(s)
	if n < 1 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// fmtElapsed is "12s", "3m04s" or "1h02m".
func fmtElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// Elapsed formats a duration as the statuses do ("45s", "3m04s").
func Elapsed(d time.Duration) string { return fmtElapsed(d) }

// Join joins the non-empty parts with " · ".
func Join(parts ...string) string {
	var keep []string
	for _, s := range parts {
		if s != "" {
			keep = append(keep, s)
		}
	}
	return strings.Join(keep, " · ")
}
