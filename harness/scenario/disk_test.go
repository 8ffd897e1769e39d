package scenario_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chronicleweaver/chronicleweaver/harness/scenario"
)

const diskScenario = `
name: disk
expect: {disk_refused: true}
env: {appendfsync: everysec, redis_disk: 8MiB}
load: {model: open, rate: 10, duration: 1s}
nemesis:
  - {fault: disk-full, target: redis, count: 1, every: 100ms, for: 100ms}
`

// A disk-full fault needs its dependency on a small filesystem of a size
// the file states; the error names the missing field.
func TestDiskFullNeedsADisk(t *testing.T) {
	t.Parallel()
	if _, err := scenario.Parse([]byte(diskScenario), false); err != nil {
		t.Fatalf("valid disk scenario refused: %v", err)
	}
	cases := []struct{ yaml, want string }{
		{strings.Replace(diskScenario, "redis_disk: 8MiB", "postgres_disk: 8MiB", 1), "env.redis_disk"},
		{strings.Replace(diskScenario, "target: redis", "target: service-0", 1), "applies to the disk of redis or postgres"},
		{strings.Replace(diskScenario, "8MiB", "8MB", 1), `size "8MB"`},
		{strings.Replace(diskScenario, "8MiB", "0", 1), `size "0"`},
	}
	for _, c := range cases {
		if _, err := scenario.Parse([]byte(c.yaml), false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one naming %q", err, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]int64{"4096": 4096, "512KiB": 512 << 10, "64MiB": 64 << 20, "1GiB": 1 << 30} {
		if got, err := scenario.ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "MiB", "-1MiB", "1.5MiB", "1 MiB", "64mb"} {
		if _, err := scenario.ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) accepted", s)
		}
	}
}

// A backend that cannot put a dependency on a small filesystem skips the
// scenario and says why: the run is not valid, and its error is
// ErrSkipped, never a pass.
func TestDiskScenarioSkippedWhereItCannotMount(t *testing.T) {
	t.Parallel()
	s, err := scenario.Parse([]byte(diskScenario), false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := scenario.Run(context.Background(), s, scenario.Options{
		Backend: scenario.BackendExternal, Target: "http://127.0.0.1:1", RunsDir: t.TempDir(),
	})
	if !errors.Is(err, scenario.ErrSkipped) {
		t.Fatalf("error %v, want ErrSkipped", err)
	}
	if res.Valid || !strings.HasPrefix(res.Skipped, "cannot mount: ") || !strings.Contains(res.Skipped, "external backend") {
		t.Fatalf("result valid %v, skipped %q: want not valid, skipped naming why", res.Valid, res.Skipped)
	}
}
