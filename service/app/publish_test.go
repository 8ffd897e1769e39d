package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/config"
)

// Every status code of /publish. For each answer the queue is checked at
// once (the workers are held by a table lock, so the stream cannot move):
// a 200 adds exactly its events, anything else adds nothing. Once released,
// the stats count exactly the events of the 200 answers.
func TestPublishStatusCodes(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	tb := newTestbed(t, func(c *config.Config) {
		c.APIToken = token
		c.MaxBatch = 5
		c.MaxBodyBytes = 4096
		c.WorkerCount = 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	unlock := tb.lockEvents(ctx)

	events := func(n int, mutate func(i int, e map[string]any)) string {
		var evs []map[string]any
		for i := range n {
			e := ev("codes", fmt.Sprintf("e%d", i))
			if mutate != nil {
				mutate(i, e)
			}
			evs = append(evs, e)
		}
		b, _ := json.Marshal(map[string]any{"events": evs})
		return string(b)
	}
	bearer := "Bearer " + token
	big := `{"events":[],"pad":"` + strings.Repeat("x", 5000) + `"}` // valid JSON over MAX_BODY_BYTES

	type tcase struct {
		name    string
		ctype   string // "-" for none
		auth    string // "-" for none
		body    string
		chunked bool // send without Content-Length
		code    int
		events  int      // for 200: events_count
		loc     []any    // for 422: loc of the first error
		contain string   // substring of the body
		headers []string // headers the answer must carry
	}
	cases := []tcase{
		{name: "zero events", body: `{"events":[]}`, code: 200, events: 0, contain: `"Published 0 events"`},
		{name: "two events", body: events(2, nil), code: 200, events: 2},
		{name: "batch at MAX_BATCH", body: events(5, nil), code: 200, events: 5},
		{name: "json with charset", ctype: "application/json; charset=utf-8", body: events(1, nil), code: 200, events: 1},
		{name: "+json media type", ctype: "application/vnd.chronicle+json", body: events(1, nil), code: 200, events: 1},
		{name: "lower-case bearer scheme", auth: "bearer " + token, body: events(1, nil), code: 200, events: 1},
		{name: "upper-case bearer scheme", auth: "BEARER " + token, body: events(1, nil), code: 200, events: 1},
		{name: "chunked body", chunked: true, body: events(3, nil), code: 200, events: 3},

		{name: "malformed json", body: `{"events": [`, code: 400},
		{name: "empty body", body: ``, code: 400},
		{name: "trailing data", body: `{"events": []} {}`, code: 400},
		{name: "top-level array", body: `[{"event_id":"x"}]`, code: 400},
		{name: "top-level string", body: `"events"`, code: 400},
		{name: "no events key", body: `{"event": []}`, code: 400},
		{name: "events is an object", body: `{"events": {}}`, code: 400},

		{name: "no authorization", auth: "-", body: events(1, nil), code: 401, headers: []string{"WWW-Authenticate"}},
		{name: "wrong token", auth: "Bearer nope", body: events(1, nil), code: 401, headers: []string{"WWW-Authenticate"}},
		{name: "token without scheme", auth: token, body: events(1, nil), code: 401},
		{name: "basic scheme", auth: "Basic " + token, body: events(1, nil), code: 401},
		{name: "auth before content checks", auth: "-", ctype: "text/plain", body: `nonsense`, code: 401},

		{name: "body over MAX_BODY_BYTES", body: big, code: 413},
		{name: "chunked body over MAX_BODY_BYTES", chunked: true, body: big, code: 413},
		{name: "more than MAX_BATCH events", body: events(6, nil), code: 413},

		{name: "no content type", ctype: "-", body: events(1, nil), code: 415},
		{name: "text/plain", ctype: "text/plain", body: events(1, nil), code: 415},
		{name: "xml", ctype: "application/xml", body: events(1, nil), code: 415},
		{name: "unparsable content type", ctype: "application/json; ;", body: events(1, nil), code: 415},

		{name: "bad timestamp", body: events(3, func(i int, e map[string]any) {
			if i == 1 {
				e["timestamp"] = "yesterday"
			}
		}), code: 422, loc: []any{"body", "events", 1, "timestamp"}},
		{name: "missing event_id", body: events(2, func(i int, e map[string]any) {
			if i == 0 {
				delete(e, "event_id")
			}
		}), code: 422, loc: []any{"body", "events", 0, "event_id"}},
		{name: "payload not an object", body: events(1, func(_ int, e map[string]any) { e["payload"] = []int{1} }),
			code: 422, loc: []any{"body", "events", 0, "payload"}},
		{name: "events null", body: `{"events": null}`, code: 422, loc: []any{"body", "events"}},
	}

	wantReceived := int64(0)
	wantEntries := int64(0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, err := tb.q.Depth(ctx)
			mustf(t, err == nil, "depth: %v", err)
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, tb.url+"/publish", body)
			mustf(t, err == nil, "request: %v", err)
			switch tc.ctype {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.ctype)
			}
			switch tc.auth {
			case "":
				req.Header.Set("Authorization", bearer)
			case "-":
			default:
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			mustf(t, err == nil, "POST /publish: %v", err)
			text, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.code, text)
			}
			mustf(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), "content type %q", resp.Header.Get("Content-Type"))
			mustf(t, strings.Contains(string(text), tc.contain), "body %s lacks %s", text, tc.contain)
			for _, h := range tc.headers {
				mustf(t, resp.Header.Get(h) != "", "no %s header", h)
			}
			after, err := tb.q.Depth(ctx)
			mustf(t, err == nil, "depth: %v", err)
			switch tc.code {
			case 200:
				var ok struct {
					Status      string `json:"status"`
					Message     string `json:"message"`
					EventsCount int    `json:"events_count"`
				}
				mustf(t, json.Unmarshal(text, &ok) == nil, "body %s", text)
				mustf(t, ok.Status == "success" && ok.EventsCount == tc.events &&
					ok.Message == fmt.Sprintf("Published %d events", tc.events), "body %s", text)
				entries := int64(0)
				if tc.events > 0 {
					entries = 1 // one entry per request
				}
				mustf(t, after.Entries == before.Entries+entries && after.Backlog == before.Backlog+int64(tc.events),
					"queue %+v -> %+v for %d events", before, after, tc.events)
				wantReceived += int64(tc.events)
				wantEntries += entries
			default:
				mustf(t, after.Entries == before.Entries && after.Backlog == before.Backlog,
					"a %d answer changed the queue: %+v -> %+v", tc.code, before, after)
				var v struct {
					Detail json.RawMessage `json:"detail"`
				}
				mustf(t, json.Unmarshal(text, &v) == nil && len(v.Detail) > 0, "no detail in %s", text)
				if tc.loc != nil {
					var vb validationBody
					mustf(t, json.Unmarshal(text, &vb) == nil && vb.names(tc.loc...), "422 body %s, want loc %v", text, tc.loc)
				}
			}
		})
	}

	mustf(t, unlock() == nil, "unlock")
	s := tb.drained()
	if s.Received != wantReceived || s.UniqueProcessed+s.DuplicatedDropped != wantReceived {
		t.Fatalf("stats %+v, want exactly the %d events of the 200 answers", s, wantReceived)
	}
	if n := tb.count("SELECT count(*) FROM applied_entries"); n != wantEntries {
		t.Fatalf("%d entries applied, want %d", n, wantEntries)
	}
}
