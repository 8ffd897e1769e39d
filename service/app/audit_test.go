package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

type auditPage struct {
	Count     int64 `json:"count"`
	AuditLogs []struct {
		ID        int64     `json:"id"`
		EventID   string    `json:"event_id"`
		Topic     string    `json:"topic"`
		Source    string    `json:"source"`
		Action    string    `json:"action"`
		WorkerID  *string   `json:"worker_id"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"audit_logs"`
}

// /audit filters (action, topic, event_id, from, to, limit), newest first,
// and 422 naming the parameter for bad values.
func TestAuditFilters(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)

	// Phase 1: 3 copies of (a, 1) and one of (a, 2), (b, 1).
	mustf(t, tb.publish(ev("a", "1"), ev("a", "2"), ev("a", "1")) == 200, "publish")
	mustf(t, tb.publish(ev("b", "1"), ev("a", "1")) == 200, "publish")
	tb.drained()
	// A boundary on a whole millisecond (queued_at has millisecond
	// precision), strictly after everything of phase 1...
	mid := time.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	waitFor(t, time.Second, "the clock passing the boundary", func() bool { return time.Now().After(mid) })
	// ...and strictly before everything of phase 2.
	mustf(t, tb.publish(ev("c", "1"), ev("b", "1")) == 200, "publish")
	tb.drained()

	get := func(q url.Values) auditPage {
		t.Helper()
		var p auditPage
		code := tb.getJSON("/audit?"+q.Encode(), &p)
		mustf(t, code == 200, "GET /audit?%s: %d", q.Encode(), code)
		// Newest first (ties by id, descending).
		for i := 1; i < len(p.AuditLogs); i++ {
			a, b := p.AuditLogs[i-1], p.AuditLogs[i]
			mustf(t, a.CreatedAt.After(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ID > b.ID),
				"/audit?%s not newest first at %d: %+v then %+v", q.Encode(), i, a, b)
		}
		return p
	}
	// 7 copies: 4 stored (a/1, a/2, b/1, c/1), 3 dropped; 3 entries each.
	cases := []struct {
		name  string
		query url.Values
		count int64
		check func(action, topic, id string, at time.Time) bool
	}{
		{"everything", url.Values{}, 21, nil},
		{"action PROCESSED", url.Values{"action": {"PROCESSED"}}, 4,
			func(a, _, _ string, _ time.Time) bool { return a == "PROCESSED" }},
		{"action DROPPED", url.Values{"action": {"DROPPED"}}, 3,
			func(a, _, _ string, _ time.Time) bool { return a == "DROPPED" }},
		{"action RECEIVED", url.Values{"action": {"RECEIVED"}}, 7,
			func(a, _, _ string, _ time.Time) bool { return a == "RECEIVED" }},
		{"action FAILED", url.Values{"action": {"FAILED"}}, 0, nil},
		{"topic a", url.Values{"topic": {"a"}}, 12,
			func(_, tp, _ string, _ time.Time) bool { return tp == "a" }},
		{"topic a, event_id 1", url.Values{"topic": {"a"}, "event_id": {"1"}}, 9,
			func(_, tp, id string, _ time.Time) bool { return tp == "a" && id == "1" }},
		{"event_id 1, action DROPPED", url.Values{"event_id": {"1"}, "action": {"DROPPED"}}, 3,
			func(a, _, id string, _ time.Time) bool { return a == "DROPPED" && id == "1" }},
		{"unknown topic", url.Values{"topic": {"zzz"}}, 0, nil},
		{"from the boundary", url.Values{"from": {mid.Format(time.RFC3339Nano)}}, 6,
			func(_, tp, _ string, at time.Time) bool { return !at.Before(mid) && (tp == "c" || tp == "b") }},
		{"to the boundary", url.Values{"to": {mid.Format(time.RFC3339Nano)}}, 15,
			func(_, _, _ string, at time.Time) bool { return !at.After(mid) }},
		{"from and to, with an offset", url.Values{"from": {mid.Add(-time.Hour).In(time.FixedZone("x", 3600)).Format(time.RFC3339Nano)},
			"to": {mid.Format(time.RFC3339Nano)}}, 15, nil},
		{"from after to", url.Values{"from": {mid.Format(time.RFC3339Nano)}, "to": {mid.Add(-time.Hour).Format(time.RFC3339Nano)}}, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := get(tc.query)
			mustf(t, p.Count == tc.count, "count %d, want %d", p.Count, tc.count)
			mustf(t, len(p.AuditLogs) == int(tc.count), "%d logs, want %d", len(p.AuditLogs), tc.count)
			for _, l := range p.AuditLogs {
				if tc.check != nil && !tc.check(l.Action, l.Topic, l.EventID, l.CreatedAt) {
					t.Fatalf("log %+v does not match %v", l, tc.query)
				}
				worker := l.Action == "PROCESSED" || l.Action == "DROPPED"
				mustf(t, (l.WorkerID != nil) == worker, "log %+v: worker_id", l)
			}
		})
	}

	// limit cuts the page, not the count: the newest entries come first.
	all := get(url.Values{})
	p := get(url.Values{"limit": {"2"}})
	mustf(t, p.Count == 21 && len(p.AuditLogs) == 2, "limit 2: count %d, %d logs", p.Count, len(p.AuditLogs))
	mustf(t, p.AuditLogs[0].ID == all.AuditLogs[0].ID && p.AuditLogs[1].ID == all.AuditLogs[1].ID, "limit 2 is not the newest two")
	// The default limit is 100 and the maximum 1000.
	mustf(t, len(get(url.Values{"limit": {"1000"}}).AuditLogs) == 21, "limit 1000")

	bad := []struct{ query, param string }{
		{"action=BOGUS", "action"},
		{"action=processed", "action"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=x", "limit"},
		{"from=yesterday", "from"},
		{"from=2026-01-01", "from"},
		{"to=2026-13-01T00:00:00Z", "to"},
	}
	for _, tc := range bad {
		t.Run(tc.query, func(t *testing.T) {
			code, _, body := tb.get("/audit?" + tc.query)
			var v validationBody
			_ = json.Unmarshal(body, &v)
			if code != http.StatusUnprocessableEntity || !v.names("query", tc.param) {
				t.Fatalf("GET /audit?%s: %d %s, want 422 naming %s", tc.query, code, body, tc.param)
			}
		})
	}
}
