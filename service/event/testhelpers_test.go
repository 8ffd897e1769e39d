package event

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const (
	okTS      = `"2024-01-02T03:04:05Z"`
	okPayload = `{"message":"hello","timestamp":"2024-01-02T03:04:05Z"}`
	omit      = "\x00omit"
)

// evSpec holds raw JSON values of an event's fields; omit drops the field.
type evSpec struct {
	id, topic, source, ts, payload string
	extra                          string // raw `"k":v` members appended
}

func defEv() evSpec {
	return evSpec{id: `"e1"`, topic: `"orders"`, source: `"svc"`, ts: okTS, payload: okPayload}
}

func (s evSpec) json() string {
	var parts []string
	add := func(k, v string) {
		if v != omit {
			parts = append(parts, `"`+k+`":`+v)
		}
	}
	add("event_id", s.id)
	add("topic", s.topic)
	add("source", s.source)
	add("timestamp", s.ts)
	add("payload", s.payload)
	if s.extra != "" {
		parts = append(parts, s.extra)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func withID(v string) string { s := defEv(); s.id = v; return s.json() }
func withTopic(v string) string {
	s := defEv()
	s.topic = v
	return s.json()
}
func withSource(v string) string {
	s := defEv()
	s.source = v
	return s.json()
}
func withTS(v string) string { s := defEv(); s.ts = v; return s.json() }
func withPayload(v string) string {
	s := defEv()
	s.payload = v
	return s.json()
}

// payloadWith builds a payload object with valid message/timestamp plus the
// raw members in rest.
func payloadWith(rest string) string {
	if rest == "" {
		return okPayload
	}
	return `{"message":"hello","timestamp":"2024-01-02T03:04:05Z",` + rest + `}`
}

func reqBody(evs ...string) []byte {
	return []byte(`{"events":[` + strings.Join(evs, ",") + `]}`)
}

func q(s string) string { return `"` + s + `"` }

// locString renders a loc like fmt.Sprint: "[body events 0 event_id]".
func locString(loc []any) string { return fmt.Sprint(loc) }

// errSummary renders a ValidationError as "loc type" lines.
func errSummary(ve *ValidationError) []string {
	out := make([]string, len(ve.Errors))
	for i, e := range ve.Errors {
		out[i] = locString(e.Loc) + " " + e.Type
	}
	return out
}

func asValidation(t *testing.T, err error) *ValidationError {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %T %v", err, err)
	}
	return ve
}

func asRequest(t *testing.T, err error) *RequestError {
	t.Helper()
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("want *RequestError, got %T %v", err, err)
	}
	return re
}

// nested returns depth levels of nested arrays: "[[...]]" with n '['.
func nestedArrays(n int) string {
	return strings.Repeat("[", n) + strings.Repeat("]", n)
}

func nestedObjects(n int) string {
	return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
}
