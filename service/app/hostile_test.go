package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/app"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

// Replays of the measured cases of issue 16 (hostile input): each request
// must cost at most a bounded multiple of its size, and errors must say
// nothing internal.

// hostileRatioBound is the largest response bytes / request bytes allowed
// for the replayed cases.
const hostileRatioBound = 4.0

// roundTrip sends one request and returns the status, headers, and the
// number of response body bytes (read and counted, not kept).
func (tb *testbed) roundTrip(method, path, ctype string, body []byte) (int, http.Header, int64, []byte) {
	tb.t.Helper()
	req, err := http.NewRequest(method, tb.url+path, bytes.NewReader(body))
	if err != nil {
		tb.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var head bytes.Buffer
	n, err := io.Copy(io.MultiWriter(&limitedWriter{w: &head, n: 1 << 20}, io.Discard), resp.Body)
	if err != nil {
		tb.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, n, head.Bytes()
}

// limitedWriter keeps the first n bytes written and accepts the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(l.n, len(p))
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// requestBytes approximates a request's size on the wire: request line,
// the headers Go sends, and the body.
func requestBytes(method, path string, body []byte) int {
	return len(method) + len(path) + 120 + len(body)
}

// hostileCase1 is case 1 of the issue: a 64 KB request whose payload has a
// 55,000-character key holding 1,000 NUL strings (each an error whose loc
// repeats the key).
func hostileCase1() []byte {
	var b strings.Builder
	b.WriteString(`{"events":[{"event_id":"a","topic":"t","source":"s","timestamp":"2026-01-02T03:04:05Z",` +
		`"payload":{"message":"m","timestamp":"2026-01-02T03:04:05Z","`)
	b.WriteString(strings.Repeat("<", 55_000))
	b.WriteString(`":[`)
	for i := range 1000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"\u0000"`)
	}
	b.WriteString(`]}}]}`)
	return []byte(b.String())
}

func TestHostileCase1BoundedValidationErrors(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	body := hostileCase1()
	start := time.Now()
	code, _, n, head := tb.roundTrip(http.MethodPost, "/publish", "application/json", body)
	ratio := float64(n) / float64(requestBytes("POST", "/publish", body))
	t.Logf("case 1: request %d bytes, %d answered %d bytes in %s: ratio %.3f", len(body), code, n, time.Since(start), ratio)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422: %.300s", code, head)
	}
	if ratio > hostileRatioBound {
		t.Fatalf("response/request = %.1f, want <= %.1f", ratio, hostileRatioBound)
	}
	var v validationBody
	if err := json.Unmarshal(head, &v); err != nil {
		t.Fatalf("422 body is not JSON (or over 1 MiB): %v: %.300s", err, head)
	}
	last := v.Detail[len(v.Detail)-1]
	if last.Type != "too_many_errors" || !strings.Contains(last.Msg, "more") {
		t.Fatalf("last error %+v, want the too_many_errors entry saying how many more", last)
	}
	if bytes.Contains(head, []byte(`\u003c`)) {
		t.Fatalf("422 body escapes '<' as \\u003c: %.300s", head)
	}
	for _, d := range v.Detail {
		for _, l := range d.Loc {
			if s, ok := l.(string); ok && len(s) > 80 {
				t.Fatalf("loc element of %d bytes, want a bounded cut: %.100s...", len(s), s)
			}
		}
	}
	if got := tb.count("SELECT count(*) FROM events"); got != 0 {
		t.Fatalf("%d events stored for a rejected request", got)
	}
}

// hostileCase2 is case 2 of the issue: n numbers that PostgreSQL stores
// compactly but prints with 131,072 digits each.
func hostileCase2(n int) []byte {
	nums := strings.TrimSuffix(strings.Repeat("1e131071,", n), ",")
	return []byte(`{"events":[{"event_id":"big","topic":"t","source":"s","timestamp":"9999-12-31T23:59:59Z",` +
		`"payload":{"message":"m","timestamp":"2026-01-02T03:04:05Z","n":[` + nums + `]}}]}`)
}

func TestHostileCase2HugePrintingNumbers(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	body := hostileCase2(4000)
	code, _, pn, head := tb.roundTrip(http.MethodPost, "/publish", "application/json", body)
	tb.drained()
	gcode, _, n, _ := tb.roundTrip(http.MethodGet, "/events", "", nil)
	t.Logf("case 2: publish of %d bytes -> %d with %d bytes (ratio %.3f); then GET /events -> %d with %d bytes: ratio %.3f",
		len(body), code, pn, float64(pn)/float64(requestBytes("POST", "/publish", body)),
		gcode, n, float64(n)/float64(requestBytes("GET", "/events", nil)))
	if ratio := float64(pn) / float64(requestBytes("POST", "/publish", body)); ratio > hostileRatioBound {
		t.Fatalf("422 response/request = %.1f, want <= %.1f", ratio, hostileRatioBound)
	}
	var v validationBody
	_ = json.Unmarshal(head, &v)
	if code != http.StatusUnprocessableEntity || !v.names("body", "events", 0, "payload", "n", 0) {
		t.Fatalf("publish of 4,000 numbers 1e131071: %d %.300s, want 422 naming body.events.0.payload.n.0", code, head)
	}
	if v.Detail[0].Type != "number_range" {
		t.Fatalf("type %q, want number_range", v.Detail[0].Type)
	}
	if gcode != http.StatusOK || n > 200 {
		t.Fatalf("GET /events: %d with %d bytes, want an empty page", gcode, n)
	}
}

// Numbers at the limits are stored, and PostgreSQL prints each back in at
// most 82 characters (40 digits, the point, 40 decimals, the sign).
func TestHostileNumbersAtTheLimitPrintSmall(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	body := []byte(`{"events":[{"event_id":"n","topic":"t","source":"s","timestamp":"2026-01-02T03:04:05Z",` +
		`"payload":{"message":"m","timestamp":"2026-01-02T03:04:05Z","n":[9.99e39,-1e-40,0.5e-39,-1.5E+39,1.` +
		strings.Repeat("5", 40) + `]}}]}`)
	code, _, _, head := tb.roundTrip(http.MethodPost, "/publish", "application/json", body)
	mustf(t, code == http.StatusOK, "publish numbers at the limits: %d %s", code, head)
	tb.drained()
	var page struct {
		Events []struct {
			Payload struct {
				N []json.RawMessage `json:"n"`
			} `json:"payload"`
		} `json:"events"`
	}
	mustf(t, tb.getJSON("/events", &page) == http.StatusOK, "GET /events")
	mustf(t, len(page.Events) == 1 && len(page.Events[0].Payload.N) == 5, "stored payload: %+v", page)
	for _, n := range page.Events[0].Payload.N {
		if len(n) > 82 {
			t.Errorf("number printed in %d characters: %s", len(n), n)
		}
		t.Logf("printed: %s", n)
	}
}

// TestHostileCase3BadQueryInput: NUL, invalid UTF-8 and oversized values in
// query parameters and cursors are 422 naming the parameter, never a 503,
// and no answer carries internals.
func TestHostileCase3BadQueryInput(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	mustf(t, tb.publish(ev("t", "1")) == 200, "publish")
	tb.drained()
	cursor := func(topic string) string {
		b, _ := json.Marshal([]any{time.Now().UnixMicro(), topic, "x"})
		return url.QueryEscape(base64.RawURLEncoding.EncodeToString(b))
	}
	long := strings.Repeat("a", 5000)
	cases := []struct{ path, param string }{
		{"/events?topic=%00", "topic"},
		{"/events?topic=%ff%fe", "topic"},
		{"/events?topic=" + long, "topic"},
		{"/events?cursor=" + cursor("\x00"), "cursor"},
		{"/events?cursor=" + cursor(strings.Repeat("t", 300)), "cursor"},
		{"/events?limit=%00", "limit"},
		{"/audit?topic=%00", "topic"},
		{"/audit?event_id=%c3%28", "event_id"},
		{"/audit?event_id=" + long, "event_id"},
		{"/audit?action=%00", "action"},
		{"/audit?from=%00", "from"},
		{"/audit?to=" + long, "to"},
		{"/stats?x=%00", "x"},
		{"/audit/summary?x=%ff", "x"},
	}
	for _, tc := range cases {
		code, hdr, n, head := tb.roundTrip(http.MethodGet, tc.path, "", nil)
		var v validationBody
		_ = json.Unmarshal(head, &v)
		if code != http.StatusUnprocessableEntity || !v.names("query", tc.param) {
			t.Errorf("GET %.80s: %d %.300s, want 422 naming query.%s", tc.path, code, head, tc.param)
		}
		if hdr.Get("Retry-After") != "" {
			t.Errorf("GET %.80s: Retry-After on a client error", tc.path)
		}
		if ratio := float64(n) / float64(requestBytes("GET", tc.path, nil)); ratio > hostileRatioBound {
			t.Errorf("GET %.80s: response/request = %.1f", tc.path, ratio)
		}
		for _, leak := range leaks(tb) {
			if bytes.Contains(head, []byte(leak)) {
				t.Errorf("GET %.80s: body names %q: %.300s", tc.path, leak, head)
			}
		}
	}
}

// leaks are strings no answer may carry: the database's user, name and
// address, Redis's address and the stream key prefix, and internal error
// prefixes.
func leaks(tb *testbed) []string {
	out := []string{"SQLSTATE", "store:", "queue:", tb.cfg.StreamPrefix}
	for _, raw := range []string{tb.cfg.DatabaseURL, tb.cfg.RedisURL} {
		u, err := url.Parse(raw)
		if err != nil {
			tb.t.Fatal(err)
		}
		out = append(out, u.Host)
		if n := u.User.Username(); n != "" {
			out = append(out, n)
		}
		if p := strings.TrimPrefix(u.Path, "/"); len(p) > 2 {
			out = append(out, p)
		}
	}
	return out
}

// Only a real dependency failure is 503, and its body (as /ready's) says
// nothing internal: a Redis of its own, killed.
func TestHostileDependencyFailureSaysNothingInternal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rds, err := devenv.StartRedis(ctx, devenv.RedisOptions{})
	mustf(t, err == nil, "start redis: %v", err)
	t.Cleanup(func() { _ = rds.Close() })
	tb := newTestbed(t, func(c *config.Config) { c.RedisURL = rds.URL() })
	mustf(t, rds.Kill() == nil, "kill redis")
	body, _ := json.Marshal(map[string]any{"events": []any{ev("t", "1")}})
	for _, rq := range []struct{ method, path string }{
		{http.MethodGet, "/ready"}, {http.MethodGet, "/stats"}, {http.MethodPost, "/publish"},
	} {
		var b []byte
		if rq.method == http.MethodPost {
			b = body
		}
		code, _, _, head := tb.roundTrip(rq.method, rq.path, "application/json", b)
		if code != http.StatusServiceUnavailable {
			t.Errorf("%s %s with Redis down: %d %s, want 503", rq.method, rq.path, code, head)
		}
		for _, leak := range append(leaks(tb), "dial", "connection refused", "127.0.0.1") {
			if bytes.Contains(head, []byte(leak)) {
				t.Errorf("%s %s: body names %q: %s", rq.method, rq.path, leak, head)
			}
		}
		t.Logf("%s %s: %d %s", rq.method, rq.path, code, bytes.TrimSpace(head))
	}
	mustf(t, rds.Start(ctx) == nil, "restart redis") // for the drain at the end
}

// lockedBuffer is a bytes.Buffer safe for the logger's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Safe defaults: with no APP_HOST the service listens on 127.0.0.1 only;
// the start says whether auth is on and for which endpoints; every answer
// carries X-Content-Type-Options: nosniff.
func TestHostileSafeDefaults(t *testing.T) {
	t.Parallel()
	for _, token := range []string{"", "tok"} {
		cfg := config.Defaults()
		cfg.DatabaseURL, cfg.RedisURL, cfg.StreamPrefix = env.NewDatabase(t), env.Redis.URL(), env.NewPrefix(t)
		cfg.InstanceID, cfg.DrainGrace, cfg.APIToken = "defaults", 0, token
		cfg.Port = 0 // any free port, on the default APP_HOST
		var logs lockedBuffer
		m := &app.Main{Config: cfg, Log: app.NewLogger(&logs, "info")}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := m.Run(ctx)
		cancel()
		mustf(t, err == nil, "start: %v", err)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := m.Close(ctx); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		if !strings.HasPrefix(m.Addr(), "127.0.0.1:") {
			t.Errorf("default listen address %s, want 127.0.0.1 only", m.Addr())
		}
		want := `"auth":false`
		if token != "" {
			want = `"auth":true`
		}
		if l := logs.String(); !strings.Contains(l, want) || !strings.Contains(l, "POST /publish") {
			t.Errorf("API_TOKEN=%q: no start line saying %s for POST /publish:\n%s", token, want, l)
		}
		for _, path := range []string{"/", "/health", "/events", "/stats", "/docs", "/openapi.json", "/metrics", "/nope", "/events?topic=%00"} {
			resp, err := http.Get(m.URL() + path)
			mustf(t, err == nil, "GET %s: %v", path, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", path, got)
			}
		}
	}
}

// bigEvent is a valid event whose payload holds about size bytes of '<'
// (a character encoding/json would escape 6-fold).
func bigEvent(topic, id string, size int) map[string]any {
	e := ev(topic, id)
	e["payload"].(map[string]any)["blob"] = strings.Repeat("<", size)
	return e
}

// /events pages are bounded in bytes as well as rows; the cursor goes on
// where the byte budget stopped, so every event is still read exactly once.
func TestHostileEventsPageBytes(t *testing.T) {
	t.Parallel()
	const pageBytes = 256 << 10
	tb := newTestbed(t, func(c *config.Config) { c.EventsPageBytes = pageBytes })
	const n = 24
	for i := range n {
		var body bytes.Buffer
		enc := json.NewEncoder(&body)
		enc.SetEscapeHTML(false) // '<' as is: the payload stays under 64 KiB
		mustf(t, enc.Encode(map[string]any{"events": []any{bigEvent("big", fmt.Sprintf("e%02d", i), 50_000)}}) == nil, "encode")
		code, _ := tb.post("/publish", "application/json", body.Bytes(), nil)
		mustf(t, code == 200, "publish %d: %d", i, code)
	}
	tb.drained()
	seen := map[string]int{}
	path := "/events?topic=big&limit=10000"
	pages := 0
	for {
		code, _, nbytes, head := tb.roundTrip(http.MethodGet, path, "", nil)
		mustf(t, code == http.StatusOK, "GET %s: %d", path, code)
		if nbytes > pageBytes+64<<10 {
			t.Fatalf("page of %d bytes, want <= EVENTS_PAGE_BYTES (%d) + one event", nbytes, pageBytes)
		}
		var page eventsPage
		mustf(t, json.Unmarshal(head, &page) == nil, "page is not JSON")
		mustf(t, len(page.Events) > 0, "empty page before the end")
		for _, e := range page.Events {
			seen[e.EventID]++
		}
		pages++
		if page.NextCursor == nil {
			break
		}
		path = "/events?topic=big&limit=10000&cursor=" + url.QueryEscape(*page.NextCursor)
	}
	mustf(t, len(seen) == n, "read %d distinct events of %d", len(seen), n)
	for id, c := range seen {
		mustf(t, c == 1, "event %s read %d times", id, c)
	}
	mustf(t, pages >= 4, "%d pages for %d events of 50 KB with a 256 KiB budget", pages, n)
	t.Logf("%d events of 50 KB in %d pages", n, pages)
}

// /stats and /audit/summary list at most STATS_MAX_TOPICS topics and
// count them all.
func TestHostileStatsManyTopics(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, func(c *config.Config) { c.StatsMaxTopics = 5 })
	var evs []map[string]any
	for i := range 12 {
		for j := range i + 1 { // topic i has i+1 events: the busiest are the last
			evs = append(evs, ev(fmt.Sprintf("topic-%02d", i), strconv.Itoa(j)))
		}
	}
	mustf(t, tb.publish(evs...) == 200, "publish")
	tb.drained()
	var st struct {
		Topics      []string `json:"topics"`
		TopicsCount int      `json:"topics_count"`
		Received    int      `json:"received"`
	}
	mustf(t, tb.getJSON("/stats", &st) == 200, "GET /stats")
	if len(st.Topics) != 5 || st.TopicsCount != 12 || st.Topics[0] != "topic-00" || st.Received != len(evs) {
		t.Fatalf("/stats: %+v, want the first 5 topics by name, topics_count 12, received %d", st, len(evs))
	}
	var sum struct {
		TotalReceived int                       `json:"total_received"`
		ByTopic       map[string]map[string]int `json:"by_topic"`
		TopicsCount   int                       `json:"topics_count"`
		WorkersCount  int                       `json:"workers_count"`
	}
	mustf(t, tb.getJSON("/audit/summary", &sum) == 200, "GET /audit/summary")
	if len(sum.ByTopic) != 5 || sum.TopicsCount != 12 || sum.TotalReceived != len(evs) || sum.ByTopic["topic-11"]["received"] != 12 {
		t.Fatalf("/audit/summary: %+v, want the 5 busiest topics, topics_count 12, total_received %d", sum, len(evs))
	}
	if _, ok := sum.ByTopic["topic-06"]; ok {
		t.Fatalf("/audit/summary lists topic-06, not among the 5 busiest: %v", sum.ByTopic)
	}
}

// Reads beyond READ_CONCURRENCY wait, then are refused with 503;
// publishes go on meanwhile, and a read with a bad parameter is 422 (it is
// checked before it waits). A read is held by a lock on the events table.
func TestHostileReadConcurrency(t *testing.T) {
	t.Parallel()
	if v := readConcurrencyViolation(t, ""); v != "" {
		t.Fatal(v)
	}
}

// readConcurrencyViolation runs a service with READ_CONCURRENCY 1 (and the
// planted bug, if any), holds one read, and says how a second one was not
// refused with 503.
func readConcurrencyViolation(t *testing.T, bug string) string {
	tb := newTestbed(t, func(c *config.Config) { c.ReadConcurrency, c.PlantedBug = 1, bug })
	mustf(t, tb.publish(ev("t", "0")) == 200, "publish")
	tb.drained()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock := tb.lockEvents(ctx)

	held := make(chan int, 1)
	go func() {
		resp, err := http.Get(tb.url + "/events")
		if err != nil {
			held <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		held <- resp.StatusCode
	}()
	waitFor(t, 20*time.Second, "the first read waiting on the lock", func() bool {
		return tb.count("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'events'::regclass") > 0
	})
	// A bad cursor is 422 at once, however busy the reads are.
	cur := url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte(`[1700000000000000,"t\u0000","e"]`)))
	code, _, _, head := tb.roundTrip(http.MethodGet, "/events?cursor="+cur, "", nil)
	mustf(t, code == http.StatusUnprocessableEntity, "bad cursor while reads are busy: %d %s, want 422", code, head)
	// The second read: READ_CONCURRENCY refuses it within ReadWait (the
	// client's timeout bounds the wait of a read that is not refused).
	hc := &http.Client{Timeout: 10 * time.Second}
	var violation string
	resp, err := hc.Get(tb.url + "/audit")
	if err != nil {
		violation = fmt.Sprintf("second read while one is held: %v, want 503 naming READ_CONCURRENCY", err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !bytes.Contains(body, []byte("READ_CONCURRENCY")) {
			violation = fmt.Sprintf("second read while one is held: %d %s, want 503 naming READ_CONCURRENCY with Retry-After", resp.StatusCode, body)
		}
	}
	// Ingestion is not starved: a publish is acknowledged (the queue is
	// Redis; the workers wait on the lock like the read).
	mustf(t, tb.publish(ev("t", "1")) == 200, "publish while reads are busy")
	mustf(t, unlock() == nil, "unlock")
	mustf(t, <-held == http.StatusOK, "the held read did not finish with 200")
	mustf(t, tb.getJSON("/stats", nil) == 200, "read after the held one finished")
	return violation
}

// Publishes are refused with 503 (nothing queued) while Redis holds more
// than QUEUE_MAX_BYTES.
func TestHostileQueueMaxBytes(t *testing.T) {
	t.Parallel()
	if v := queueMaxBytesViolation(t, ""); v != "" {
		t.Fatal(v)
	}
}

// queueMaxBytesViolation runs a service with QUEUE_MAX_BYTES 1 MiB, below
// any Redis's own use (and the planted bug, if any), and says how its
// publishes were not refused once it has polled Redis's memory.
func queueMaxBytesViolation(t *testing.T, bug string) string {
	tb := newTestbed(t, func(c *config.Config) { c.QueueMaxBytes, c.PlantedBug = 1<<20, bug })
	body, _ := json.Marshal(map[string]any{"events": []any{ev("t", "1")}})
	// Redis's memory is polled every second: after 3 s of publishes, the
	// last is judged against it.
	var code int
	var head []byte
	var hdr http.Header
	end := time.Now().Add(3 * time.Second)
	for {
		code, hdr, _, head = tb.roundTrip(http.MethodPost, "/publish", "application/json", body)
		if code == http.StatusServiceUnavailable || time.Now().After(end) {
			break
		}
	}
	if code != http.StatusServiceUnavailable || !bytes.Contains(head, []byte("QUEUE_MAX_BYTES")) ||
		hdr.Get("Retry-After") == "" || hdr.Get("Chronicle-Outcome") != "rejected" {
		return fmt.Sprintf("publish over QUEUE_MAX_BYTES: %d %v %s, want 503 naming it, rejected, with Retry-After", code, hdr, head)
	}
	return ""
}
