package app_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

type eventsPage struct {
	Count  int64 `json:"count"`
	Events []struct {
		EventID   string          `json:"event_id"`
		Topic     string          `json:"topic"`
		Source    string          `json:"source"`
		Payload   json.RawMessage `json:"payload"`
		Timestamp time.Time       `json:"timestamp"`
		StoredAt  time.Time       `json:"stored_at"`
	} `json:"events"`
	NextCursor *string `json:"next_cursor"`
}

type validationBody struct {
	Detail []struct {
		Loc  []any  `json:"loc"`
		Msg  string `json:"msg"`
		Type string `json:"type"`
	} `json:"detail"`
}

// names reports whether a 422 body's first error is at loc.
func (v validationBody) names(loc ...any) bool {
	if len(v.Detail) == 0 || len(v.Detail[0].Loc) != len(loc) {
		return false
	}
	for i := range loc {
		if fmt.Sprint(v.Detail[0].Loc[i]) != fmt.Sprint(loc[i]) {
			return false
		}
	}
	return v.Detail[0].Msg != "" && v.Detail[0].Type != ""
}

// /events keyset pagination over many equal timestamps: walking next_cursor
// visits every stored event exactly once, newest first, and count is the
// total of the filter on every page.
func TestEventsPagination(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	// Topics and ids that differ only in case or by non-ASCII bytes, so
	// ties are broken by byte order consistently in the ORDER BY and the
	// cursor comparison.
	topics := []string{"orders", "Orders", "zé"}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const total = 2500
	perTopic := map[string]int{}
	var batch []map[string]any
	for i := range total {
		topic := topics[i%3]
		id := []string{"a", "B", "é"}[i%7%3] + fmt.Sprintf("-%04d", i)
		// 40 distinct instants, some with microseconds: ~62 events each.
		ts := base.Add(time.Duration(i%40) * 1500 * time.Millisecond).Add(time.Duration(i%40%3) * time.Microsecond)
		e := ev(topic, id)
		e["timestamp"] = ts.Format(time.RFC3339Nano)
		batch = append(batch, e)
		perTopic[topic]++
		if len(batch) == 500 {
			mustf(t, tb.publish(batch...) == 200, "publish refused")
			batch = nil
		}
	}
	s := tb.drained()
	mustf(t, s.UniqueProcessed == total, "stats %+v, want %d stored", s, total)

	walk := func(t *testing.T, filter string, want int) {
		t.Helper()
		seen := map[evKey]bool{}
		var last *evKey
		var lastTS time.Time
		cursor := ""
		for pages := 0; ; pages++ {
			mustf(t, pages <= want/100+1, "more pages than %d events need", want)
			q := url.Values{"limit": {"100"}}
			if filter != "" {
				q.Set("topic", filter)
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			var p eventsPage
			code := tb.getJSON("/events?"+q.Encode(), &p)
			mustf(t, code == 200, "GET /events?%s: %d", q.Encode(), code)
			mustf(t, p.Count == int64(want), "count = %d, want %d", p.Count, want)
			mustf(t, len(p.Events) == 100 || p.NextCursor == nil, "page of %d events with a next cursor", len(p.Events))
			for _, e := range p.Events {
				k := evKey{e.Topic, e.EventID}
				mustf(t, !seen[k], "event %v on two pages", k)
				seen[k] = true
				mustf(t, filter == "" || e.Topic == filter, "event of topic %q with filter %q", e.Topic, filter)
				if last != nil {
					// Newest first; ties by (topic, event_id) descending, in bytes.
					mustf(t, !e.Timestamp.After(lastTS), "timestamps out of order: %v after %v", e.Timestamp, lastTS)
					if e.Timestamp.Equal(lastTS) {
						mustf(t, k.Topic < last.Topic || (k.Topic == last.Topic && k.ID < last.ID),
							"tie order: %v after %v", k, *last)
					}
				}
				last, lastTS = &k, e.Timestamp
			}
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
		}
		mustf(t, len(seen) == want, "walk visited %d events, want %d", len(seen), want)
	}
	t.Run("all", func(t *testing.T) { walk(t, "", total) })
	for _, topic := range topics {
		t.Run("topic="+topic, func(t *testing.T) { walk(t, topic, perTopic[topic]) })
	}

	// A page that ends exactly at the last event has no next cursor.
	var p eventsPage
	mustf(t, tb.getJSON("/events?limit=2500", &p) == 200, "limit 2500")
	mustf(t, len(p.Events) == total && p.NextCursor == nil, "limit 2500: %d events, next %v", len(p.Events), p.NextCursor)
	mustf(t, tb.getJSON("/events?limit=10000", &p) == 200 && len(p.Events) == total, "limit 10000")
	// The default page is 1000 events.
	mustf(t, tb.getJSON("/events", &p) == 200 && len(p.Events) == 1000 && p.NextCursor != nil, "default limit")
	// An unknown topic: nothing, and count 0.
	mustf(t, tb.getJSON("/events?topic=nope", &p) == 200 && p.Count == 0 && len(p.Events) == 0 && p.NextCursor == nil,
		"unknown topic: %+v", p)
	// The payload comes back as sent.
	mustf(t, tb.getJSON("/events?topic=orders&limit=1", &p) == 200, "one event")
	var payload map[string]any
	mustf(t, json.Unmarshal(p.Events[0].Payload, &payload) == nil && payload["message"] == "m-"+p.Events[0].EventID,
		"payload %s", p.Events[0].Payload)
}

func TestEventsQueryValidation(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	mustf(t, tb.publish(ev("t", "1")) == 200, "publish")
	tb.drained()
	b64 := base64.RawURLEncoding.EncodeToString
	cases := []struct {
		query string
		param string
	}{
		{"limit=0", "limit"},
		{"limit=-1", "limit"},
		{"limit=10001", "limit"},
		{"limit=x", "limit"},
		{"limit=1.5", "limit"},
		{"cursor=garbage!", "cursor"},
		{"cursor=" + b64([]byte("not json")), "cursor"},
		{"cursor=" + b64([]byte(`[1,2]`)), "cursor"},
		{"cursor=" + b64([]byte(`[1,2,3]`)), "cursor"},
		{"cursor=" + b64([]byte(`["x","a","b"]`)), "cursor"},
		// Well formed, but no page ever returns an instant PostgreSQL
		// cannot store.
		{"cursor=" + b64([]byte(`[9223372036854775807,"a","b"]`)), "cursor"},
		{"cursor=" + b64([]byte(`[-9223372036854775808,"a","b"]`)), "cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			code, _, body := tb.get("/events?" + tc.query)
			var v validationBody
			_ = json.Unmarshal(body, &v)
			if code != http.StatusUnprocessableEntity || !v.names("query", tc.param) {
				t.Fatalf("GET /events?%s: %d %s, want 422 naming %s", tc.query, code, body, tc.param)
			}
		})
	}
}
