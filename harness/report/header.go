package report

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CollectHeader fills what this process can find out about where it runs:
// Commit (gitDescribeIn the working directory), Date (now, UTC, whole
// seconds), Machine and Go. The caller sets Command's companions: Postgres, Redis,
// Backend, Settings and DurableDB.
func CollectHeader(command string) Header {
	return Header{
		Commit:  gitDescribeIn(""),
		Date:    time.Now().UTC().Truncate(time.Second),
		Command: command,
		Machine: collectMachine(),
		Go:      runtime.Version(),
	}
}

func collectMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), CPUModel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if v := cpuModel(b); v != "" {
			m.CPUModel = v
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryMB = memTotalMB(b)
	}
	m.OS = runtime.GOOS + "/" + runtime.GOARCH
	if k := kernelRelease(); k != "" {
		m.OS += ", kernel " + k
	}
	return m
}

// cpuModel returns the first "model name" of /proc/cpuinfo (or, on CPUs
// that do not report one, "Hardware" or "cpu model").
func cpuModel(cpuinfo []byte) string {
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, seen := fields[k]; !seen && v != "" {
			fields[k] = v
		}
	}
	for _, k := range []string{"model name", "Hardware", "cpu model", "Processor"} {
		if v := fields[k]; v != "" {
			return v
		}
	}
	return ""
}

// memTotalMB returns MemTotal of /proc/meminfo in MiB (0 if absent).
func memTotalMB(meminfo []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}

func kernelRelease() string {
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		return strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "uname", "-r").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// headerRows are the header as (field, value) pairs, in a fixed order.
func headerRows(h Header) [][2]string {
	orUnknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	mem := "unknown"
	if h.Machine.MemoryMB > 0 {
		mem = fmt.Sprintf("%s MiB", thousands(h.Machine.MemoryMB))
	}
	date := "unknown"
	if !h.Date.IsZero() {
		date = h.Date.UTC().Format(time.RFC3339)
	}
	durable := "no (fsync off)"
	if h.DurableDB {
		durable = "yes (fsync on)"
	}
	return [][2]string{
		{"Commit", orUnknown(h.Commit)},
		{"Date", date},
		{"Command", orUnknown(h.Command)},
		{"CPUs (nproc)", strconv.Itoa(h.Machine.CPUs)},
		{"CPU model", orUnknown(h.Machine.CPUModel)},
		{"Memory", mem},
		{"OS", orUnknown(h.Machine.OS)},
		{"Go", orUnknown(h.Go)},
		{"PostgreSQL", orUnknown(h.Postgres)},
		{"Redis", orUnknown(h.Redis)},
		{"Backend", orUnknown(h.Backend)},
		{"Durable PostgreSQL", durable},
		{"Settings", settingsString(h.Settings)},
	}
}

func settingsString(m map[string]string) string {
	if len(m) == 0 {
		return "defaults"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}

// writeHeader writes the header block as a two-column table.
func writeHeader(md *mdWriter, h Header) {
	t := table{head: []string{"Field", "Value"}, align: "ll"}
	for _, r := range headerRows(h) {
		v := r[1]
		switch r[0] {
		case "Commit", "Command", "Settings":
			v = code(v)
		}
		t.add(r[0], v)
	}
	md.table(t)
}

// headerText is the header as plain "field: value" lines (PNG metadata).
func headerText(h Header) string {
	var b strings.Builder
	for _, r := range headerRows(h) {
		fmt.Fprintf(&b, "%s: %s\n", r[0], r[1])
	}
	return b.String()
}

// provenance is the one-line origin printed under plot titles.
func provenance(h Header) string {
	parts := []string{"commit " + orDash(h.Commit)}
	if !h.Date.IsZero() {
		parts = append(parts, h.Date.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if h.Backend != "" {
		parts = append(parts, h.Backend)
	}
	parts = append(parts, fmt.Sprintf("%d CPUs", h.Machine.CPUs))
	return strings.Join(parts, ", ")
}
