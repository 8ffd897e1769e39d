package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicleweaver/chronicleweaver/service/api"
	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/metrics"
	"github.com/chronicleweaver/chronicleweaver/service/openapi"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

// Every route the router serves is documented in the OpenAPI document with
// the same method, and every documented operation is served.
func TestRoutesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	s := api.New(api.Options{}, nil, nil, metrics.New(), slog.New(slog.DiscardHandler))
	routes, err := s.Routes()
	mustf(t, err == nil, "routes: %v", err)
	served := map[string]bool{}
	for _, r := range routes {
		served[strings.ToLower(r[0])+" "+r[1]] = true
	}

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	mustf(t, json.Unmarshal(openapi.Spec(), &doc) == nil, "openapi.json does not parse")
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		mustf(t, slices.Contains(openapi.Paths(), path), "Paths() lacks %s", path)
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented[method+" "+path] = true
			}
		}
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("route %q is not documented in openapi.json", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("documented operation %q is not served", r)
		}
	}
	var servedPaths []string
	for _, r := range routes {
		if !slices.Contains(servedPaths, r[1]) {
			servedPaths = append(servedPaths, r[1])
		}
	}
	slices.Sort(servedPaths)
	mustf(t, slices.Equal(servedPaths, openapi.Paths()), "served paths %v, documented %v", servedPaths, openapi.Paths())
	mustf(t, len(routes) >= 11, "only %d routes", len(routes))
}

// metricNames lists the chronicle_* metrics the metrics package defines.
func metricNames(t *testing.T) []string {
	t.Helper()
	m := metrics.New()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if sub := fq.FindStringSubmatch(d.String()); sub != nil && strings.HasPrefix(sub[1], "chronicle_") {
				names = append(names, sub[1])
			}
		}
	}
	mustf(t, len(names) >= 16, "found only %d chronicle_* metrics: %v", len(names), names)
	return names
}

// After some traffic (stored, dropped, refused and a dead-lettered entry),
// /metrics exposes every chronicle_* metric, and the counters agree with
// the stats.
func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, func(c *config.Config) { c.MaxAttempts = 1 })
	mustf(t, tb.publish(ev("m", "1"), ev("m", "2"), ev("m", "1")) == 200, "publish")
	mustf(t, tb.publish(ev("m", "2")) == 200, "publish")
	code, _ := tb.post("/publish", "application/json", []byte(`{"events":[{}]}`), nil)
	mustf(t, code == 422, "invalid publish: %d", code)
	// An entry PostgreSQL refuses (a payload jsonb cannot hold): a data
	// error, then the dead-letter stream.
	bad := event.Event{EventID: "bad", Topic: "m", Timestamp: time.Now(), Payload: []byte(`{"message":"\u0000"}`)}
	_, err := tb.q.Append(context.Background(), queue.Message{Token: queue.NewToken(), ReceivedAt: time.Now(), Count: 1,
		Body: event.AppendBatch(nil, []event.Event{bad})})
	mustf(t, err == nil, "append: %v", err)
	s := tb.drained()
	mustf(t, s.DeadLettered == 1 && s.UniqueProcessed == 2 && s.DuplicatedDropped == 2, "stats %+v", s)

	code, hdr, body := tb.get("/metrics")
	mustf(t, code == 200 && strings.HasPrefix(hdr.Get("Content-Type"), "text/plain"), "/metrics: %d %s", code, hdr.Get("Content-Type"))
	text := string(body)
	for _, name := range metricNames(t) {
		if !regexp.MustCompile(`(?m)^` + name + `(_bucket|_sum|_count)?[{ ]`).MatchString(text) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	want := map[string]float64{
		`chronicle_publish_requests_total{code="200"}`:   2,
		`chronicle_publish_requests_total{code="422"}`:   1,
		`chronicle_events_accepted_total`:                4,
		`chronicle_events_stored_total`:                  2,
		`chronicle_events_dropped_total`:                 2,
		`chronicle_batch_errors_total{kind="data"}`:      1,
		`chronicle_dead_letters_total`:                   1,
		`chronicle_publish_duration_seconds_count`:       3,
		`chronicle_redeliveries_total`:                   0,
		`chronicle_batch_errors_total{kind="transient"}`: -1, // absent: no transient error happened
	}
	for sample, v := range want {
		got, ok := metricValue(text, sample)
		switch {
		case v < 0 && ok:
			t.Errorf("%s = %v, want absent", sample, got)
		case v >= 0 && (!ok || got != v):
			t.Errorf("%s = %v (present %v), want %v", sample, got, ok, v)
		}
	}
	// The gauges are refreshed every second.
	waitFor(t, 10*time.Second, "the dead-letter gauge", func() bool {
		v, _ := tb.metric("chronicle_dead_lettered_entries")
		return v == 1
	})
}

// The operational endpoints answer as the contract says.
func TestOperationalEndpoints(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, nil)
	cases := []struct {
		method, path string
		code         int
		ctype        string
		contains     []string
	}{
		{"GET", "/", 200, "application/json", []string{`"message":"ChronicleWeaver aggregator is running"`}},
		{"GET", "/health", 200, "application/json", []string{`"status":"healthy"`}},
		{"GET", "/ready", 200, "application/json", []string{`"status":"ready"`}},
		{"GET", "/openapi.json", 200, "application/json", []string{`"openapi"`, `"/publish"`}},
		{"GET", "/docs", 200, "text/html", []string{"<html", "/openapi.json"}},
		{"GET", "/stats", 200, "application/json", []string{`"received":0`, `"topics":[]`, `"workers":4`}},
		{"GET", "/events", 200, "application/json", []string{`"count":0`, `"events":[]`, `"next_cursor":null`}},
		{"GET", "/audit", 200, "application/json", []string{`"count":0`, `"audit_logs":[]`}},
		{"GET", "/audit/summary", 200, "application/json", []string{`"total_received":0`, `"by_topic":{}`}},
		{"GET", "/nope", 404, "application/json", []string{`"detail"`}},
		{"GET", "/publish", 405, "application/json", []string{`"detail"`}},
		{"DELETE", "/events", 405, "application/json", []string{`"detail"`}},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tb.url+tc.path, nil)
			mustf(t, err == nil, "request: %v", err)
			resp, err := http.DefaultClient.Do(req)
			mustf(t, err == nil, "%s %s: %v", tc.method, tc.path, err)
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			mustf(t, resp.StatusCode == tc.code, "%s %s: %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.code, b.String())
			mustf(t, strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype), "content type %q", resp.Header.Get("Content-Type"))
			for _, c := range tc.contains {
				mustf(t, strings.Contains(b.String(), c), "%s %s: body lacks %s: %.300s", tc.method, tc.path, c, b.String())
			}
		})
	}
	// /docs is self-contained: nothing loaded from another origin.
	_, _, docs := tb.get("/docs")
	for _, ext := range []string{`src="http`, `href="http`, `src="//`, `href="//`, "@import"} {
		mustf(t, !strings.Contains(string(docs), ext), "/docs loads an external resource (%s)", ext)
	}
}
