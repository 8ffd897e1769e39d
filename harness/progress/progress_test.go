package progress

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPlainLines: without a terminal, lasting lines are printed as they
// come and a status only after a silence of the interval, counted when
// items are; no control character is written.
func TestPlainLines(t *testing.T) {
	t.Parallel()
	var lines []string
	p := Lines(func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }, time.Hour)
	if p.Live() {
		t.Fatal("Lines printer is live")
	}
	p.Status("before anything") // nothing printed yet: shown
	p.Logf("crash-service: start: PostgreSQL, Redis")
	p.Status("crash-service: start 1s") // right after a line: not shown
	p.every = 0
	p.Items(3)
	p.ItemDone()
	p.Status("crash-redis: load 4s")
	p.Close()
	want := []string{"before anything", "crash-service: start: PostgreSQL, Redis", "[2/3] crash-redis: load 4s"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines\n%q\nwant\n%q", lines, want)
	}
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\033") {
			t.Errorf("control character in %q", l)
		}
	}
}

// TestNewOnAFile: New on a file that is not a terminal prints plain lines.
func TestNewOnAFile(t *testing.T) {
	t.Parallel()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := New(f)
	if p.Live() {
		t.Fatal("a printer on a regular file is live")
	}
	p.Logf("one")
	p.Status("two")
	p.Close()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "one\n" {
		t.Errorf("file holds %q, want the lasting line alone (the status came within the interval)", b)
	}
}

// TestLive: on a terminal the status is a bar line redrawn in place, and a
// lasting line clears it, is printed with its time, and the bar comes back.
func TestLive(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := &Printer{start: time.Now(), every: Every, w: &buf, fd: -1}
	if !p.Live() {
		t.Fatal("not live")
	}
	p.Items(2)
	p.Status("crash-service: faults 12s of 30s")
	p.Logf("crash-service: valid")
	p.ItemDone()
	p.Status("crash-redis: start")
	p.Close()
	out := buf.String()
	for _, want := range []string{"crash-service: faults 12s of 30s", "(0/2)", "\033[2K\r", "s] crash-service: valid\n", "crash-redis: start", "(1/2)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
	if i, j := strings.Index(out, "crash-service: valid"), strings.LastIndex(out, "crash-redis: start"); i < 0 || j < i {
		t.Errorf("the status after the lasting line is not drawn below it:\n%q", out)
	}
}

// TestLiveWithoutItems: a single run's status is one line without a bar,
// erased before a lasting line and by Close, after which a lasting line
// draws nothing below it.
func TestLiveWithoutItems(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := &Printer{start: time.Now(), every: Every, w: &buf, fd: -1}
	p.Status("crash-service [load, 3s]")
	p.Logf("crash-service: drain")
	p.Close()
	p.Logf("runs/ holds 1 run folder")
	out := buf.String()
	want := "\r\033[2K0s crash-service [load, 3s]\r\033[2K[   0.0s] crash-service: drain\n\r\033[2K0s crash-service [load, 3s]\r\033[2K[   0.0s] runs/ holds 1 run folder\n"
	if out != want {
		t.Errorf("output\n%q\nwant\n%q", out, want)
	}
}

func TestCutAndElapsed(t *testing.T) {
	t.Parallel()
	if got := cut("abcdef", 4); got != "abc…" {
		t.Errorf("cut = %q", got)
	}
	if got := cut("abc", 4); got != "abc" {
		t.Errorf("cut = %q", got)
	}
	for d, want := range map[time.Duration]string{45 * time.Second: "45s", 184 * time.Second: "3m04s", 3720 * time.Second: "1h02m"} {
		if got := Elapsed(d); got != want {
			t.Errorf("Elapsed(%v) = %q, want %q", d, got, want)
		}
	}
	if got := Join("a", "", "b"); got != "a · b" {
		t.Errorf("Join = %q", got)
	}
}
