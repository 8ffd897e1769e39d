package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/config"
)

// peakRSS is the process's peak RSS in MiB since the last resetPeakRSS
// (VmHWM of /proc/self/status; 0 where there is none). The service runs in
// the test's process: the figure is the test's and the service's together.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// resetPeakRSS starts a new peak (writing 5 to clear_refs resets VmHWM).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// measured logs one replayed case's figures, for the lead to quote.
func measured(t *testing.T, name string, reqBytes int, status int, respBytes int64) {
	t.Helper()
	t.Logf("MEASURED %-44s status %d, request %9d B, answer %8d B, amplification %8.4f, peak RSS %6.1f MiB",
		name, status, reqBytes, respBytes, float64(respBytes)/float64(reqBytes), peakRSS())
}

// TestHostileMeasuredCases replays the measured cases of issue 16 in one
// service with the default limits, and logs for each the amplification
// (answer bytes / request bytes) and the peak RSS. Not parallel: the peak
// RSS is the process's, so no other test runs meanwhile.
func TestHostileMeasuredCases(t *testing.T) {
	tb := newTestbed(t, nil)
	post := func(body []byte) (int, int64, []byte) {
		code, _, n, head := tb.roundTrip(http.MethodPost, "/publish", "application/json", body)
		return code, n, head
	}

	// 1. 64 KB: a 55,000-character key holding 1,000 NUL strings.
	resetPeakRSS()
	body := hostileCase1()
	code, n, head := post(body)
	measured(t, "1. 55,000-char key, 1,000 NULs", requestBytes("POST", "/publish", body), code, n)
	mustf(t, code == http.StatusUnprocessableEntity && n <= 16<<10, "case 1: %d with %d bytes, want 422 of at most 16 KiB", code, n)

	// 2. 4,000 numbers 1e131071: 422 naming the path.
	resetPeakRSS()
	body = hostileCase2(4000)
	code, n, head = post(body)
	measured(t, "2. 4,000 numbers 1e131071", requestBytes("POST", "/publish", body), code, n)
	var v validationBody
	_ = json.Unmarshal(head, &v)
	mustf(t, code == http.StatusUnprocessableEntity && v.names("body", "events", 0, "payload", "n", 0), "case 2: %d %.300s", code, head)

	// 3. 1,000 events of 10,000 '<' each, then one /events page: bounded by
	// EVENTS_PAGE_BYTES (plus one event), '<' written as is.
	resetPeakRSS()
	stored := 0
	for r := range 10 {
		var evs []map[string]any
		for i := range 100 {
			evs = append(evs, bigEvent("lt", fmt.Sprintf("e%04d", r*100+i), 10_000))
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		mustf(t, enc.Encode(map[string]any{"events": evs}) == nil, "encode")
		code, _, head = post(b.Bytes())
		mustf(t, code == http.StatusOK, "case 3: publish %d: %d %.200s", r, code, head)
		stored += b.Len()
	}
	tb.drained()
	path := "/events?topic=lt&limit=10000"
	code, _, n, head = tb.roundTrip(http.MethodGet, path, "", nil)
	measured(t, "3. /events page over 1,000 '<' events", requestBytes("GET", path, nil), code, n)
	t.Logf("case 3: the page is %d bytes of %d published (%.2f); EVENTS_PAGE_BYTES %d", n, stored, float64(n)/float64(stored), tb.cfg.EventsPageBytes)
	mustf(t, code == http.StatusOK && n <= int64(tb.cfg.EventsPageBytes)+64<<10, "case 3: %d with %d bytes", code, n)
	mustf(t, !bytes.Contains(head, []byte(`\u003c`)), "case 3: '<' escaped in the page")

	// 4. GET /events?topic=%00: 422 naming the parameter, nothing internal.
	resetPeakRSS()
	path = "/events?topic=%00"
	code, _, n, head = tb.roundTrip(http.MethodGet, path, "", nil)
	measured(t, "4. GET /events?topic=%00", requestBytes("GET", path, nil), code, n)
	v = validationBody{}
	_ = json.Unmarshal(head, &v)
	mustf(t, code == http.StatusUnprocessableEntity && v.names("query", "topic"), "case 4: %d %s", code, head)
	for _, leak := range leaks(tb) {
		mustf(t, !bytes.Contains(head, []byte(leak)), "case 4: the answer names %q: %s", leak, head)
	}

	// 5. 100,000 distinct topics: /stats and /audit/summary list at most
	// STATS_MAX_TOPICS and count them all.
	resetPeakRSS()
	for r := range 10 {
		var evs []map[string]any
		for i := range 10_000 {
			evs = append(evs, ev(fmt.Sprintf("topic-%06d", r*10_000+i), "1"))
		}
		b, err := json.Marshal(map[string]any{"events": evs})
		mustf(t, err == nil, "encode")
		code, _, head = post(b)
		mustf(t, code == http.StatusOK, "case 5: publish %d: %d %.200s", r, code, head)
	}
	waitFor(t, 2*time.Minute, "100,000 topics drained", func() bool {
		var s stats
		return tb.getJSON("/stats", &s) == http.StatusOK && s.QueueDepth == 0 && s.Pending == 0 && s.UniqueProcessed >= 101_000
	})
	for _, path := range []string{"/stats", "/audit/summary"} {
		code, _, n, head = tb.roundTrip(http.MethodGet, path, "", nil)
		measured(t, "5. "+path+" over 100,000 topics", requestBytes("GET", path, nil), code, n)
		var c struct {
			TopicsCount int `json:"topics_count"`
		}
		_ = json.Unmarshal(head, &c)
		mustf(t, code == http.StatusOK && n <= 256<<10 && c.TopicsCount >= 100_000,
			"case 5: GET %s: %d with %d bytes, topics_count %d", path, code, n, c.TopicsCount)
	}

	// 6. QUEUE_MAX_BYTES: past it a publish is refused with 503, nothing
	// queued (Chronicle-Outcome: rejected), a small answer (a service of
	// its own: 1 MiB, below any Redis's own use; the first publishes may
	// pass until the service has polled Redis's memory).
	resetPeakRSS()
	qb := newTestbed(t, func(c *config.Config) { c.QueueMaxBytes = 1 << 20 })
	body, _ = json.Marshal(map[string]any{"events": []any{ev("t", "1")}})
	var hdr http.Header
	waitFor(t, 10*time.Second, "publish refused over QUEUE_MAX_BYTES", func() bool {
		code, hdr, n, head = qb.roundTrip(http.MethodPost, "/publish", "application/json", body)
		return code == http.StatusServiceUnavailable
	})
	measured(t, "6. publish over QUEUE_MAX_BYTES", requestBytes("POST", "/publish", body), code, n)
	mustf(t, bytes.Contains(head, []byte("QUEUE_MAX_BYTES")) && hdr.Get("Chronicle-Outcome") == "rejected", "case 6: %s %v", head, hdr)
}
