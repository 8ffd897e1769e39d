package results

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
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

// Fill copies the environment of a run into h, when h records none yet
// (the first run's environment; settings that differ are in each
// scenario's record).
func (h *Header) Fill(e Environment) {
	if h.Backend == "" && e.Backend != "" {
		h.Backend, h.Postgres, h.Redis, h.DurableDB, h.Settings = e.Backend, e.Postgres, e.Redis, e.DurableDB, e.Settings
	}
}
