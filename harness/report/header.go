package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// headerRows are the header as (field, value) pairs, in a fixed order.
func headerRows(h results.Header) [][2]string {
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
func writeHeader(md *mdWriter, h results.Header) {
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
func headerText(h results.Header) string {
	var b strings.Builder
	for _, r := range headerRows(h) {
		fmt.Fprintf(&b, "%s: %s\n", r[0], r[1])
	}
	return b.String()
}

// provenance is the one-line origin printed under plot titles.
func provenance(h results.Header) string {
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
