package results

import (
	"testing"
	"time"
)

func TestCollectHeader(t *testing.T) {
	t.Parallel()
	h := CollectHeader("go test")
	if h.Command != "go test" || h.Commit == "" || h.Go == "" || h.Machine.CPUs < 1 || h.Machine.OS == "" {
		t.Errorf("CollectHeader = %+v", h)
	}
	if h.Date.Location() != time.UTC || h.Date.IsZero() {
		t.Errorf("Date %v is not UTC now", h.Date)
	}
}

func TestProcParsing(t *testing.T) {
	t.Parallel()
	cpuinfo := "processor\t: 0\nvendor_id\t: X\nmodel name\t: Test CPU @ 3.00GHz\n\nprocessor\t: 1\nmodel name\t: Other\n"
	if got := cpuModel([]byte(cpuinfo)); got != "Test CPU @ 3.00GHz" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := memTotalMB([]byte("MemTotal:       16384000 kB\nMemFree: 1 kB\n")); got != 16000 {
		t.Errorf("memTotalMB = %d", got)
	}
}

func TestHeaderFill(t *testing.T) {
	t.Parallel()
	var h Header
	first := Environment{Backend: "local", Services: 1, Postgres: "PostgreSQL 17", Redis: "7.4", DurableDB: true,
		Settings: map[string]string{"WORKER_COUNT": "4"}}
	h.Fill(first)
	h.Fill(Environment{Backend: "docker", Postgres: "PostgreSQL 16"})
	if h.Backend != "local" || h.Postgres != "PostgreSQL 17" || h.Redis != "7.4" || !h.DurableDB || h.Settings["WORKER_COUNT"] != "4" {
		t.Errorf("Fill = %+v, want the first environment's", h)
	}
	var empty Header
	empty.Fill(Environment{})
	if empty.Backend != "" || empty.Settings != nil {
		t.Errorf("Fill of an environment without backend = %+v, want nothing", empty)
	}
}
