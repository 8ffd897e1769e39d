package openapi

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// routes lists every route of the aggregator's HTTP contract.
var routes = []string{
	"/",
	"/audit",
	"/audit/summary",
	"/docs",
	"/events",
	"/health",
	"/metrics",
	"/openapi.json",
	"/publish",
	"/ready",
	"/stats",
}

func load(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(Spec())
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	return doc
}

func TestSpecValidates(t *testing.T) {
	doc := load(t)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	if doc.Info.Title != "ChronicleWeaver aggregator" || doc.Info.Version != "1.0.0" {
		t.Errorf("info = %q %q", doc.Info.Title, doc.Info.Version)
	}
}

func TestPaths(t *testing.T) {
	doc := load(t)
	want := doc.Paths.InMatchingOrder()
	want = slices.Clone(want)
	slices.Sort(want)
	got := Paths()
	if !slices.Equal(got, want) {
		t.Fatalf("Paths() = %v, want %v", got, want)
	}
	if !slices.IsSorted(got) {
		t.Errorf("Paths() not sorted: %v", got)
	}
	for _, r := range routes {
		if !slices.Contains(got, r) {
			t.Errorf("path %q not documented", r)
		}
	}
	// The result is a copy.
	got[0] = "mutated"
	if Paths()[0] == "mutated" {
		t.Error("Paths() returns shared storage")
	}
}

func TestOperations(t *testing.T) {
	doc := load(t)
	ops := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops++
			if op.Responses == nil || op.Responses.Len() == 0 {
				t.Errorf("%s %s: no responses", method, path)
			}
			if op.OperationID == "" || op.Summary == "" || op.Description == "" {
				t.Errorf("%s %s: missing operationId, summary or description", method, path)
			}
		}
	}
	if ops != len(routes) {
		t.Errorf("%d operations, want %d", ops, len(routes))
	}

	publish := doc.Paths.Value("/publish")
	if publish == nil || publish.Post == nil {
		t.Fatal("POST /publish missing")
	}
	for _, code := range []string{"200", "400", "401", "413", "415", "422", "503"} {
		r := publish.Post.Responses.Value(code)
		if r == nil {
			t.Errorf("POST /publish: response %s missing", code)
			continue
		}
		mt := r.Value.Content.Get("application/json")
		if mt == nil || mt.Schema == nil {
			t.Errorf("POST /publish %s: no application/json schema", code)
			continue
		}
		want := "#/components/schemas/ErrorResponse"
		switch code {
		case "200":
			want = "#/components/schemas/PublishResponse"
		case "422":
			want = "#/components/schemas/ValidationError"
		}
		if mt.Schema.Ref != want {
			t.Errorf("POST /publish %s: schema %q, want %q", code, mt.Schema.Ref, want)
		}
	}
	if h := publish.Post.Responses.Value("503").Value.Headers["Retry-After"]; h == nil {
		t.Error("POST /publish 503: Retry-After header missing")
	}
	if rb := publish.Post.RequestBody; rb == nil || !rb.Value.Required || rb.Value.Content.Get("application/json") == nil {
		t.Error("POST /publish: JSON request body missing or optional")
	}
	// Bearer authentication is optional.
	sec := publish.Post.Security
	if sec == nil || !slices.ContainsFunc(*sec, func(r openapi3.SecurityRequirement) bool { return len(r) == 0 }) ||
		!slices.ContainsFunc(*sec, func(r openapi3.SecurityRequirement) bool { _, ok := r["bearerAuth"]; return ok }) {
		t.Errorf("POST /publish: security should be optional bearerAuth, got %v", sec)
	}
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" {
		t.Error("bearerAuth security scheme missing")
	}

	for path, codes := range map[string][]string{
		"/events": {"200", "422"},
		"/audit":  {"200", "422"},
		"/ready":  {"200", "503"},
	} {
		for _, code := range codes {
			if doc.Paths.Value(path).Get.Responses.Value(code) == nil {
				t.Errorf("GET %s: response %s missing", path, code)
			}
		}
	}
	if doc.Paths.Value("/docs").Get.Responses.Value("200").Value.Content.Get("text/html") == nil {
		t.Error("GET /docs: text/html missing")
	}
	if doc.Paths.Value("/metrics").Get.Responses.Value("200").Value.Content.Get("text/plain") == nil {
		t.Error("GET /metrics: text/plain missing")
	}
}

func TestSchemas(t *testing.T) {
	doc := load(t)
	for _, name := range []string{
		"Event", "PublishRequest", "PublishResponse", "ValidationError", "ErrorResponse",
		"StoredEvent", "EventsPage", "Stats", "AuditLog", "AuditPage", "AuditCounts",
		"AuditSummary", "Ready",
	} {
		s := doc.Components.Schemas[name]
		if s == nil {
			t.Errorf("schema %s missing", name)
			continue
		}
		if s.Value.Example == nil {
			t.Errorf("schema %s has no example", name)
		}
		// Every example must satisfy its own schema.
		if s.Value.Example != nil {
			if err := s.Value.VisitJSON(s.Value.Example); err != nil {
				t.Errorf("schema %s: example does not match: %v", name, err)
			}
		}
	}

	stats := doc.Components.Schemas["Stats"].Value
	for name, p := range stats.Properties {
		if name == "topics" {
			continue
		}
		if !p.Value.Type.Is("integer") || p.Value.Nullable {
			t.Errorf("Stats.%s must be a non-null integer", name)
		}
		if !slices.Contains(stats.Required, name) {
			t.Errorf("Stats.%s not required", name)
		}
	}
	if len(stats.Properties) != 10 {
		t.Errorf("Stats has %d properties, want 10", len(stats.Properties))
	}

	action := doc.Components.Schemas["AuditLog"].Value.Properties["action"].Value
	var actions []string
	for _, v := range action.Enum {
		actions = append(actions, v.(string))
	}
	if !slices.Equal(actions, []string{"RECEIVED", "QUEUED", "PROCESSED", "DROPPED", "FAILED"}) {
		t.Errorf("audit actions = %v", actions)
	}

	events := doc.Components.Schemas["PublishRequest"].Value.Properties["events"].Value
	if events.MaxItems == nil || *events.MaxItems != 10000 {
		t.Error("PublishRequest.events maxItems must be 10000")
	}
}

func TestParameterLimits(t *testing.T) {
	doc := load(t)
	check := func(path, name string, def, min, max float64) {
		t.Helper()
		p := doc.Paths.Value(path).Get.Parameters.GetByInAndName("query", name)
		if p == nil {
			t.Errorf("GET %s: parameter %s missing", path, name)
			return
		}
		s := p.Schema.Value
		if s.Default != def || s.Min == nil || *s.Min != min || s.Max == nil || *s.Max != max {
			t.Errorf("GET %s %s: default %v min %v max %v", path, name, s.Default, s.Min, s.Max)
		}
	}
	check("/events", "limit", 1000, 1, 10000)
	check("/audit", "limit", 100, 1, 1000)
	for _, n := range []string{"topic", "cursor"} {
		if doc.Paths.Value("/events").Get.Parameters.GetByInAndName("query", n) == nil {
			t.Errorf("GET /events: parameter %s missing", n)
		}
	}
	for _, n := range []string{"action", "topic", "event_id", "from", "to"} {
		if doc.Paths.Value("/audit").Get.Parameters.GetByInAndName("query", n) == nil {
			t.Errorf("GET /audit: parameter %s missing", n)
		}
	}
}

func TestSpecIsCanonicalJSON(t *testing.T) {
	var v any
	if err := json.Unmarshal(Spec(), &v); err != nil {
		t.Fatal(err)
	}
	a := Spec()
	a[0] = 'X'
	if Spec()[0] == 'X' {
		t.Error("Spec() returns shared storage")
	}
}

var externalRef = regexp.MustCompile(`(?i)\b(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*(?:https?:)?//`)

func TestDocs(t *testing.T) {
	html := string(Docs())
	lower := strings.ToLower(html)
	if !strings.HasPrefix(lower, "<!doctype html>") || !strings.Contains(lower, "</html>") {
		t.Error("Docs() is not an HTML document")
	}
	if m := externalRef.FindAllString(html, -1); len(m) > 0 {
		t.Errorf("Docs() references external resources: %q", m)
	}
	for _, bad := range []string{"@import", "url(http", "url(//", "<link", "<iframe"} {
		if strings.Contains(lower, bad) {
			t.Errorf("Docs() contains %q", bad)
		}
	}
	for _, want := range []string{"openapi.json", "<noscript>", `href="/openapi.json"`, "<script>"} {
		if !strings.Contains(html, want) {
			t.Errorf("Docs() lacks %q", want)
		}
	}
	// No script may be loaded from anywhere: the renderer is inline.
	if strings.Contains(lower, "<script src") {
		t.Error("Docs() loads an external script")
	}
	// The static summary (for readers without JavaScript) lists every path.
	for _, p := range Paths() {
		if !strings.Contains(html, "<td><code>"+p+"</code></td>") {
			t.Errorf("Docs() static summary lacks %s", p)
		}
	}
}
