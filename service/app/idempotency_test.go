package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/config"
)

// keyed posts events to /publish with an Idempotency-Key ("" for none) and
// returns the status, the Idempotent-Replayed header and the body.
func (tb *testbed) keyed(key string, events ...map[string]any) (int, string, []byte) {
	tb.t.Helper()
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		tb.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, tb.url+"/publish", bytes.NewReader(body))
	if err != nil {
		tb.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.t.Fatalf("POST /publish: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), b
}

type auditTotals struct {
	Received  int64 `json:"total_received"`
	Queued    int64 `json:"total_queued"`
	Processed int64 `json:"total_processed"`
	Dropped   int64 `json:"total_dropped"`
}

func (tb *testbed) auditTotals() auditTotals {
	tb.t.Helper()
	var a auditTotals
	mustf(tb.t, tb.getJSON("/audit/summary", &a) == http.StatusOK, "GET /audit/summary")
	return a
}

// A request repeated with its Idempotency-Key while its entry is still
// queued (the workers held by a table lock) and again once it is applied
// is acknowledged each time, like the first (same body, plus
// Idempotent-Replayed: true), and appended once: the stream holds one
// entry, and received, duplicated_dropped and the audit count it once. The
// same key with other events is a 422 naming the header, and appends
// nothing; another key, or no key, is a new request.
func TestIdempotencyKeyAppliesOnce(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, func(c *config.Config) { c.WorkerCount = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	unlock := tb.lockEvents(ctx)
	entries := func() int64 {
		n, err := tb.rdb.XLen(ctx, tb.q.Stream()).Result()
		mustf(t, err == nil, "XLEN: %v", err)
		return n
	}

	a := []map[string]any{ev("idem", "1"), ev("idem", "2"), ev("idem", "1")} // one duplicate inside
	code, replayed, first := tb.keyed("req-A", a...)
	mustf(t, code == 200 && replayed == "", "first: %d replayed=%q %s", code, replayed, first)
	mustf(t, entries() == 1, "first: %d entries, want 1", entries())

	// While queued: the same request, the same key.
	for i := range 3 {
		code, replayed, body := tb.keyed("req-A", a...)
		mustf(t, code == 200 && replayed == "true" && bytes.Equal(body, first),
			"replay %d while queued: %d replayed=%q %s, want 200 true %s", i, code, replayed, body, first)
	}
	// Same key, other events: refused, naming the header.
	code, replayed, body := tb.keyed("req-A", ev("idem", "3"))
	var v validationBody
	_ = json.Unmarshal(body, &v)
	mustf(t, code == 422 && replayed == "" && v.names("header", "Idempotency-Key"),
		"conflicting body: %d replayed=%q %s, want 422 naming the header", code, replayed, body)
	mustf(t, entries() == 1, "after replays and conflict: %d entries, want 1", entries())
	// Another key is another request, even with the same events; so is no key.
	code, replayed, _ = tb.keyed("req-B", a...)
	mustf(t, code == 200 && replayed == "", "key B: %d %q", code, replayed)
	code, replayed, _ = tb.keyed("", ev("idem", "2"))
	mustf(t, code == 200 && replayed == "", "no key: %d %q", code, replayed)
	mustf(t, entries() == 3, "%d entries, want 3", entries())

	mustf(t, unlock() == nil, "unlock")
	s := tb.drained()

	// Once applied: still a replay.
	code, replayed, body = tb.keyed("req-A", a...)
	mustf(t, code == 200 && replayed == "true" && bytes.Equal(body, first), "replay after applied: %d %q %s", code, replayed, body)
	code, _, _ = tb.keyed("req-B", a...)
	mustf(t, code == 200, "replay B after applied: %d", code)
	s2 := tb.drained()
	mustf(t, s2.Received == s.Received && s2.DuplicatedDropped == s.DuplicatedDropped && s2.UniqueProcessed == s.UniqueProcessed,
		"replays after applied changed the stats: %+v then %+v", s, s2)

	// A: 3 copies, B: 3, no key: 1; stored idem/1, idem/2.
	mustf(t, s.Received == 7 && s.UniqueProcessed == 2 && s.DuplicatedDropped == 5,
		"stats %+v, want received 7, unique 2, dropped 5", s)
	au := tb.auditTotals()
	mustf(t, au == auditTotals{Received: 7, Queued: 7, Processed: 2, Dropped: 5}, "audit %+v", au)
}

// A key record lives IDEMPOTENCY_TTL: once it expired, the same request
// with the same key is a new request, applied and counted again. The
// record is one small Redis string whose size does not grow with the key.
func TestIdempotencyKeyExpires(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, func(c *config.Config) { c.IdempotencyTTL = time.Second })
	ctx := context.Background()
	long := strings.Repeat("k", 255)
	for _, key := range []string{"x", long} {
		code, replayed, _ := tb.keyed(key, ev("ttl", "1"))
		mustf(t, code == 200 && replayed == "", "first %d: %d %q", len(key), code, replayed)
		code, replayed, _ = tb.keyed(key, ev("ttl", "1"))
		mustf(t, code == 200 && replayed == "true", "replay %d: %d %q", len(key), code, replayed)
		rec := tb.q.IdemKey("", key)
		ttl, err := tb.rdb.PTTL(ctx, rec).Result()
		mustf(t, err == nil && ttl > 0 && ttl <= time.Second, "record of key %d bytes: PTTL %s, %v", len(key), ttl, err)
		size, err := tb.rdb.MemoryUsage(ctx, rec).Result()
		mustf(t, err == nil && size <= 200, "record of key %d bytes: MEMORY USAGE %d bytes, %v", len(key), size, err)
		t.Logf("key of %d bytes: record %q uses %d bytes (MEMORY USAGE)", len(key), rec, size)
		waitFor(t, 5*time.Second, "the key record expiring", func() bool {
			n, err := tb.rdb.Exists(ctx, rec).Result()
			return err == nil && n == 0
		})
		code, replayed, _ = tb.keyed(key, ev("ttl", "1"))
		mustf(t, code == 200 && replayed == "", "after expiry %d: %d %q", len(key), code, replayed)
	}
	s := tb.drained()
	mustf(t, s.Received == 4 && s.UniqueProcessed == 1 && s.DuplicatedDropped == 3, "stats %+v", s)
}

// A bad Idempotency-Key is a 422 naming the header, and nothing is queued.
func TestIdempotencyKeyRefused(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	body, _ := json.Marshal(map[string]any{"events": []any{ev("bad", "1")}})
	cases := map[string][]string{
		"empty":     {""},
		"too long":  {strings.Repeat("k", 256)},
		"space":     {"a b"},
		"control":   {"a\x01b"},
		"non-ASCII": {"clé"},
		"repeated":  {"a", "b"},
	}
	for name, vals := range cases {
		req, err := http.NewRequest(http.MethodPost, tb.url+"/publish", bytes.NewReader(body))
		mustf(t, err == nil, "%v", err)
		req.Header.Set("Content-Type", "application/json")
		req.Header["Idempotency-Key"] = vals
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			// net/http refuses to send some bytes in a header value.
			t.Logf("%s: not sendable: %v", name, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		var v validationBody
		_ = json.Unmarshal(b, &v)
		mustf(t, resp.StatusCode == 422 && v.names("header", "Idempotency-Key"), "%s: %d %s, want 422 naming the header", name, resp.StatusCode, b)
	}
	n, err := tb.rdb.XLen(context.Background(), tb.q.Stream()).Result()
	mustf(t, err == nil && n == 0, "%d entries queued by refused requests (%v)", n, err)
}

// The audit of every event lists, oldest first, RECEIVED, QUEUED, then
// PROCESSED or DROPPED: the moments have one precision (microseconds), so
// the newest-first listing never puts QUEUED below RECEIVED. (The planted
// bug queued-at-millis is caught by the same check: see
// auditorder_planted_test.go.)
func TestAuditActionOrderPerEvent(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	if v := auditOrderViolation(tb); v != "" {
		t.Fatal(v)
	}
}

// auditOrderViolation publishes 200 event copies (some duplicates), waits
// for them to be applied and returns the first copy whose audit actions,
// oldest first, are not RECEIVED, QUEUED, then PROCESSED or DROPPED ("" if
// none).
func auditOrderViolation(tb *testbed) string {
	t := tb.t
	t.Helper()
	const requests, per = 20, 10
	for r := range requests {
		var evs []map[string]any
		for i := range per {
			evs = append(evs, ev("order", fmt.Sprint((r*per+i)%150))) // ids 0-49 twice
		}
		mustf(t, tb.publish(evs...) == 200, "publish %d", r)
	}
	tb.drained()
	var p auditPage
	mustf(t, tb.getJSON("/audit?topic=order&limit=1000", &p) == 200, "GET /audit")
	mustf(t, p.Count == 3*requests*per && len(p.AuditLogs) == int(p.Count), "count %d, %d logs", p.Count, len(p.AuditLogs))
	// Per copy (RECEIVED, QUEUED and the outcome share id / 4), oldest first.
	byCopy := map[int64][]string{}
	var order []int64
	for i := len(p.AuditLogs) - 1; i >= 0; i-- {
		l := p.AuditLogs[i]
		if byCopy[l.ID/4] == nil {
			order = append(order, l.ID/4)
		}
		byCopy[l.ID/4] = append(byCopy[l.ID/4], l.Action)
	}
	mustf(t, len(byCopy) == requests*per, "%d copies, want %d", len(byCopy), requests*per)
	for _, c := range order {
		acts := byCopy[c]
		if len(acts) != 3 || acts[0] != "RECEIVED" || acts[1] != "QUEUED" || !slices.Contains([]string{"PROCESSED", "DROPPED"}, acts[2]) {
			return fmt.Sprintf("copy %d: actions oldest first %v, want RECEIVED, QUEUED, PROCESSED|DROPPED", c, acts)
		}
	}
	// And per event_id through the filter, for an event sent once (ids
	// 50-149; two copies of one event may interleave).
	mustf(t, tb.getJSON("/audit?topic=order&event_id=100", &p) == 200, "GET /audit?event_id")
	var acts []string
	for i := len(p.AuditLogs) - 1; i >= 0; i-- {
		acts = append(acts, p.AuditLogs[i].Action)
	}
	if !slices.Equal(acts, []string{"RECEIVED", "QUEUED", "PROCESSED"}) {
		return fmt.Sprintf("event 100, oldest first: %v", acts)
	}
	return ""
}
