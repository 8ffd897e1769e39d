package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// sizedPayload returns a valid payload object whose raw encoding is exactly n
// bytes (padding goes into message).
func sizedPayload(n int) string {
	base := `{"message":"","timestamp":"2024-01-02T03:04:05Z"}`
	return `{"message":"` + strings.Repeat("x", n-len(base)) + `","timestamp":"2024-01-02T03:04:05Z"}`
}

// sizedPayloadWS is like sizedPayload but pads with insignificant whitespace,
// so the compacted payload is much smaller than the raw one.
func sizedPayloadWS(n int) string {
	return okPayload[:len(okPayload)-1] + strings.Repeat(" ", n-len(okPayload)) + "}"
}

// deepPayload returns a payload whose nesting depth is exactly depth (the
// payload object itself is level 1).
func deepPayload(depth int, objects bool) string {
	if objects {
		return payloadWith(`"x":` + nestedObjects(depth-1))
	}
	return payloadWith(`"x":` + nestedArrays(depth-1))
}

type decodeCase struct {
	name  string
	body  []byte
	lim   Limits
	want  outcome
	n     int      // events expected on success
	errs  []string // for wantInvalid: exact "loc type" list, in order
	check func(t *testing.T, evs []Event)
}

// outcome is what DecodeRequest should return.
type outcome int

const (
	wantOK        outcome = iota // events
	wantInvalid                  // a *ValidationError (the API's 422)
	wantMalformed                // a *RequestError of kind Malformed (400)
	wantTooLarge                 // a *RequestError of kind TooLarge (413)
)

// kind is the RequestError kind of a wantMalformed or wantTooLarge outcome.
func (o outcome) kind() RequestKind {
	if o == wantTooLarge {
		return TooLarge
	}
	return Malformed
}

func okCase(name string, body []byte, n int) decodeCase {
	return decodeCase{name: name, body: body, n: n}
}

func badCase(name string, body []byte, errs ...string) decodeCase {
	return decodeCase{name: name, body: body, want: wantInvalid, errs: errs}
}

// pgNumbers runs c with the number limits at PostgreSQL's own (the most
// Limits allow), to test the numeric boundary itself.
func pgNumbers(c decodeCase) decodeCase {
	c.lim = DefaultLimits()
	c.lim.MaxNumberIntDigits, c.lim.MaxNumberFracDigits = pgMaxDWeight+1, pgMaxDScale
	return c
}

func refusedCase(name string, body []byte, want outcome) decodeCase {
	return decodeCase{name: name, body: body, want: want}
}

func decodeCases() []decodeCase {
	e := reqBody
	def := defEv().json()
	idOf := func(want string) func(t *testing.T, evs []Event) {
		return func(t *testing.T, evs []Event) {
			t.Helper()
			if evs[0].EventID != want {
				t.Errorf("EventID = %q, want %q", evs[0].EventID, want)
			}
		}
	}
	payloadIs := func(want string) func(t *testing.T, evs []Event) {
		return func(t *testing.T, evs []Event) {
			t.Helper()
			if string(evs[0].Payload) != want {
				t.Errorf("Payload = %s, want %s", evs[0].Payload, want)
			}
		}
	}
	tsIs := func(want time.Time) func(t *testing.T, evs []Event) {
		return func(t *testing.T, evs []Event) {
			t.Helper()
			if !evs[0].Timestamp.Equal(want) || evs[0].Timestamp.Location() != time.UTC {
				t.Errorf("Timestamp = %v, want %v in UTC", evs[0].Timestamp, want)
			}
		}
	}
	L := func(idx string, rest string) string { return "[body events " + idx + " " + rest + "]" }

	cases := []decodeCase{
		// ---- success / shape ----
		okCase("one event", e(def), 1),
		okCase("zero events", []byte(`{"events":[]}`), 0),
		okCase("zero events with whitespace", []byte(" \n\t{ \"events\" : [ ] }\r\n"), 0),
		okCase("three events", e(def, def, def), 3),
		okCase("other top-level keys ignored", []byte(`{"a":{"b":[1,2,{"c":null}]},"events":[`+def+`],"z":"\ud800 lone surrogate in ignored key is fine"}`), 1),
		okCase("duplicate events key: last wins", []byte(`{"events":[1,2,3],"events":[]}`), 0),
		okCase("escaped events key", []byte(`{"\u0065vents":[`+def+`]}`), 1),
		{name: "unknown event keys ignored", body: e(evSpec{id: `"x"`, topic: `""`, source: `""`, ts: okTS, payload: okPayload, extra: `"extra":{"deep":[1,"\u0000",1e999999]},"Event_ID":5`}.json()), n: 1},
		{name: "duplicate event key: last wins", body: e(`{"event_id":"first","topic":"t","source":"s","timestamp":` + okTS + `,"payload":` + okPayload + `,"event_id":"second"}`), n: 1, check: idOf("second")},
		{name: "duplicate event key: last (bad) wins", body: e(`{"event_id":"first","topic":"t","source":"s","timestamp":` + okTS + `,"payload":` + okPayload + `,"event_id":5}`), want: wantInvalid, errs: []string{L("0", "event_id") + " string_type"}},
		{name: "escaped field names", body: e(`{"event\u005fid":"a","\u0074opic":"t","source":"s","timestamp":` + okTS + `,"payload":` + okPayload + `}`), n: 1, check: idOf("a")},
		{name: "field order irrelevant", body: e(`{"payload":` + okPayload + `,"timestamp":` + okTS + `,"source":"s","topic":"t","event_id":"z"}`), n: 1, check: idOf("z")},
		{name: "escapes decoded in event_id", body: e(withID(`"a\"b\\c\/d\n\t\u00e9\ud83d\ude00"`)), n: 1, check: idOf("a\"b\\c/d\n\té😀")},

		// ---- event_id ----
		badCase("event_id empty", e(withID(`""`)), L("0", "event_id")+" string_too_short"),
		{name: "event_id 1 byte", body: e(withID(`"a"`)), n: 1, check: idOf("a")},
		okCase("event_id 1024 bytes", e(withID(q(strings.Repeat("a", 1024)))), 1),
		badCase("event_id 1025 bytes", e(withID(q(strings.Repeat("a", 1025)))), L("0", "event_id")+" string_too_long"),
		okCase("event_id 1024 bytes of 2-byte runes", e(withID(q(strings.Repeat("é", 512)))), 1),
		badCase("event_id 1026 bytes of 2-byte runes (513 chars)", e(withID(q(strings.Repeat("é", 513)))), L("0", "event_id")+" string_too_long"),
		okCase("event_id 1024 bytes from escapes", e(withID(q(strings.Repeat(`\u00e9`, 512)))), 1),
		badCase("event_id 1025 bytes from escapes", e(withID(q(strings.Repeat(`\u00e9`, 512)+"a"))), L("0", "event_id")+" string_too_long"),
		badCase("event_id number", e(withID(`1`)), L("0", "event_id")+" string_type"),
		badCase("event_id null", e(withID(`null`)), L("0", "event_id")+" string_type"),
		badCase("event_id bool", e(withID(`true`)), L("0", "event_id")+" string_type"),
		badCase("event_id array", e(withID(`["a"]`)), L("0", "event_id")+" string_type"),
		badCase("event_id object", e(withID(`{}`)), L("0", "event_id")+" string_type"),
		badCase("event_id missing", e(withID(omit)), L("0", "event_id")+" missing"),
		badCase("event_id invalid UTF-8", e(withID("\"a\xffb\"")), L("0", "event_id")+" string_unicode"),
		badCase("event_id truncated UTF-8", e(withID("\"a\xc3\"")), L("0", "event_id")+" string_unicode"),
		badCase("event_id overlong UTF-8", e(withID("\"\xc0\xaf\"")), L("0", "event_id")+" string_unicode"),
		badCase("event_id UTF-8-encoded surrogate", e(withID("\"\xed\xa0\x80\"")), L("0", "event_id")+" string_unicode"),
		badCase("event_id NUL escape", e(withID(`"a\u0000b"`)), L("0", "event_id")+" string_unicode"),
		badCase("event_id lone high surrogate", e(withID(`"\ud800"`)), L("0", "event_id")+" string_unicode"),
		badCase("event_id lone high surrogate then char", e(withID(`"\ud800x"`)), L("0", "event_id")+" string_unicode"),
		badCase("event_id high surrogate then non-surrogate escape", e(withID(`"\ud800\u0041"`)), L("0", "event_id")+" string_unicode"),
		badCase("event_id two high surrogates", e(withID(`"\ud800\ud800"`)), L("0", "event_id")+" string_unicode"),
		badCase("event_id lone low surrogate", e(withID(`"\udc00"`)), L("0", "event_id")+" string_unicode"),
		badCase("event_id reversed pair", e(withID(`"\ude00\ud83d"`)), L("0", "event_id")+" string_unicode"),
		{name: "event_id valid pair uppercase hex", body: e(withID(`"\uD83D\uDE00"`)), n: 1, check: idOf("😀")},
		{name: "event_id U+FFFD and noncharacters are fine", body: e(withID(`"\ufffd\uffff` + "\uFFFD\U0010FFFF" + `"`)), n: 1, check: idOf("\uFFFD\uFFFF\uFFFD\U0010FFFF")},
		refusedCase("event_id raw NUL is a JSON syntax error", e(withID("\"a\x00b\"")), wantMalformed),
		refusedCase("event_id raw newline is a JSON syntax error", e(withID("\"a\nb\"")), wantMalformed),

		// ---- topic / source ----
		okCase("topic empty", e(withTopic(`""`)), 1),
		okCase("topic 255", e(withTopic(q(strings.Repeat("t", 255)))), 1),
		badCase("topic 256", e(withTopic(q(strings.Repeat("t", 256)))), L("0", "topic")+" string_too_long"),
		badCase("topic number", e(withTopic(`12`)), L("0", "topic")+" string_type"),
		badCase("topic null", e(withTopic(`null`)), L("0", "topic")+" string_type"),
		badCase("topic missing", e(withTopic(omit)), L("0", "topic")+" missing"),
		badCase("topic invalid UTF-8", e(withTopic("\"\x80\"")), L("0", "topic")+" string_unicode"),
		badCase("topic NUL", e(withTopic(`"\u0000"`)), L("0", "topic")+" string_unicode"),
		badCase("topic lone surrogate", e(withTopic(`"\udbff"`)), L("0", "topic")+" string_unicode"),
		okCase("source empty", e(withSource(`""`)), 1),
		okCase("source 255", e(withSource(q(strings.Repeat("s", 255)))), 1),
		badCase("source 256", e(withSource(q(strings.Repeat("s", 256)))), L("0", "source")+" string_too_long"),
		badCase("source 256 bytes of 2-byte runes", e(withSource(q(strings.Repeat("ß", 128)))), L("0", "source")+" string_too_long"),
		badCase("source bool", e(withSource(`false`)), L("0", "source")+" string_type"),
		badCase("source missing", e(withSource(omit)), L("0", "source")+" missing"),
		badCase("source invalid UTF-8", e(withSource("\"ok\xfe\"")), L("0", "source")+" string_unicode"),
		badCase("source NUL", e(withSource(`"\u0000"`)), L("0", "source")+" string_unicode"),

		// ---- timestamp (full matrix in TestParseTimestamp) ----
		{name: "timestamp with offset converted to UTC", body: e(withTS(`"2024-01-02T03:04:05.123+02:00"`)), n: 1,
			check: tsIs(time.Date(2024, 1, 2, 1, 4, 5, 123000000, time.UTC))},
		{name: "timestamp without offset is UTC", body: e(withTS(`"2024-01-02 03:04:05"`)), n: 1,
			check: tsIs(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))},
		{name: "timestamp escaped", body: e(withTS(`"2024-01-02T03:04:05\u005a"`)), n: 1,
			check: tsIs(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))},
		badCase("timestamp date only", e(withTS(`"2024-01-02"`)), L("0", "timestamp")+" datetime_parsing"),
		badCase("timestamp garbage", e(withTS(`"yesterday"`)), L("0", "timestamp")+" datetime_parsing"),
		badCase("timestamp empty", e(withTS(`""`)), L("0", "timestamp")+" datetime_parsing"),
		badCase("timestamp year 0", e(withTS(`"0000-01-01T00:00:00Z"`)), L("0", "timestamp")+" datetime_parsing"),
		badCase("timestamp Feb 30", e(withTS(`"2024-02-30T00:00:00Z"`)), L("0", "timestamp")+" datetime_parsing"),
		badCase("timestamp 10 fraction digits", e(withTS(`"2024-01-02T03:04:05.1234567891Z"`)), L("0", "timestamp")+" datetime_parsing"),
		badCase("timestamp number", e(withTS(`1700000000`)), L("0", "timestamp")+" datetime_type"),
		badCase("timestamp null", e(withTS(`null`)), L("0", "timestamp")+" datetime_type"),
		badCase("timestamp object", e(withTS(`{}`)), L("0", "timestamp")+" datetime_type"),
		badCase("timestamp missing", e(withTS(omit)), L("0", "timestamp")+" missing"),
		badCase("timestamp invalid UTF-8", e(withTS("\"2024-01-02T03:04:05\xff\"")), L("0", "timestamp")+" datetime_parsing"),
		badCase("timestamp NUL escape", e(withTS(`"2024-01-02T03:04:05\u0000"`)), L("0", "timestamp")+" datetime_parsing"),
		badCase("timestamp very long escaped", e(withTS(q(strings.Repeat(`\u0030`, 100)))), L("0", "timestamp")+" datetime_parsing"),

		// ---- payload: type, presence, size ----
		badCase("payload missing", e(withPayload(omit)), L("0", "payload")+" missing"),
		badCase("payload string", e(withPayload(`"x"`)), L("0", "payload")+" dict_type"),
		badCase("payload array", e(withPayload(`[]`)), L("0", "payload")+" dict_type"),
		badCase("payload null", e(withPayload(`null`)), L("0", "payload")+" dict_type"),
		badCase("payload number", e(withPayload(`1`)), L("0", "payload")+" dict_type"),
		badCase("payload empty object", e(withPayload(`{}`)), L("0", "payload message")+" missing", L("0", "payload timestamp")+" missing"),
		badCase("payload message missing", e(withPayload(`{"timestamp":"2024-01-02T03:04:05Z"}`)), L("0", "payload message")+" missing"),
		badCase("payload message number", e(withPayload(`{"message":1,"timestamp":"2024-01-02T03:04:05Z"}`)), L("0", "payload message")+" string_type"),
		badCase("payload message null", e(withPayload(`{"message":null,"timestamp":"2024-01-02T03:04:05Z"}`)), L("0", "payload message")+" string_type"),
		badCase("payload message object", e(withPayload(`{"message":{},"timestamp":"2024-01-02T03:04:05Z"}`)), L("0", "payload message")+" string_type"),
		okCase("payload message empty string", e(withPayload(`{"message":"","timestamp":"2024-01-02T03:04:05Z"}`)), 1),
		badCase("payload timestamp missing", e(withPayload(`{"message":"m"}`)), L("0", "payload timestamp")+" missing"),
		badCase("payload timestamp number", e(withPayload(`{"message":"m","timestamp":5}`)), L("0", "payload timestamp")+" datetime_type"),
		badCase("payload timestamp bad", e(withPayload(`{"message":"m","timestamp":"2024-13-01T00:00:00Z"}`)), L("0", "payload timestamp")+" datetime_parsing"),
		badCase("payload timestamp date only", e(withPayload(`{"message":"m","timestamp":"2024-01-01"}`)), L("0", "payload timestamp")+" datetime_parsing"),
		badCase("payload timestamp NUL reported once", e(withPayload(`{"message":"m","timestamp":"2024-01-01T00:00:00\u0000"}`)), L("0", "payload timestamp")+" string_unicode"),
		okCase("payload nested message/timestamp do not count at top level only", e(withPayload(`{"message":"m","timestamp":"2024-01-01T00:00:00Z","n":{"message":1,"timestamp":2}}`)), 1),
		badCase("payload message only nested", e(withPayload(`{"n":{"message":"m","timestamp":"2024-01-01T00:00:00Z"}}`)), L("0", "payload message")+" missing", L("0", "payload timestamp")+" missing"),
		{name: "payload duplicate message: last wins", body: e(withPayload(`{"message":"m","timestamp":"2024-01-01T00:00:00Z","message":7}`)), want: wantInvalid, errs: []string{L("0", "payload message") + " string_type"}},
		{name: "payload escaped keys recognized", body: e(withPayload(`{"m\u0065ssage":"m","timestamp":"2024-01-01T00:00:00Z"}`)), n: 1},
		okCase("payload exactly 64 KiB", e(withPayload(sizedPayload(65536))), 1),
		badCase("payload 64 KiB + 1", e(withPayload(sizedPayload(65537))), L("0", "payload")+" payload_too_large"),
		okCase("payload exactly 64 KiB with whitespace", e(withPayload(sizedPayloadWS(65536))), 1),
		badCase("payload 64 KiB + 1 counted with whitespace (raw bytes)", e(withPayload(sizedPayloadWS(65537))), L("0", "payload")+" payload_too_large"),
		{name: "payload limit configurable", body: e(withPayload(sizedPayload(101))), lim: Limits{MaxPayloadBytes: 100}, want: wantInvalid, errs: []string{L("0", "payload") + " payload_too_large"}},
		{name: "payload limit configurable ok", body: e(withPayload(sizedPayload(100))), lim: Limits{MaxPayloadBytes: 100}, n: 1},

		// ---- payload: verbatim + compaction ----
		{name: "payload compacted, otherwise verbatim", body: e(withPayload("{ \"message\" : \"a  b\\n\\u00e9\" ,\n\t\"timestamp\":\"2024-01-02T03:04:05+01:00\" , \"x\" : [ 1 , 2.50 , -0 , 1E+2 , true , false , null , { } , [ ] ] , \"\\u00e9\\/\" : \"\\\"q\\\" \" }")), n: 1,
			check: payloadIs(`{"message":"a  b\n\u00e9","timestamp":"2024-01-02T03:04:05+01:00","x":[1,2.50,-0,1E+2,true,false,null,{},[]],"\u00e9\/":"\"q\" "}`)},
		{name: "payload without whitespace copied as is", body: e(withPayload(payloadWith(`"k":["\ud83d\ude00","é"]`))), n: 1,
			check: payloadIs(payloadWith(`"k":["\ud83d\ude00","é"]`))},

		// ---- payload: depth ----
		okCase("payload depth 64 (arrays)", e(withPayload(deepPayload(64, false))), 1),
		badCase("payload depth 65 (arrays)", e(withPayload(deepPayload(65, false))), L("0", "payload")+" json_depth"),
		okCase("payload depth 64 (objects)", e(withPayload(deepPayload(64, true))), 1),
		badCase("payload depth 65 (objects)", e(withPayload(deepPayload(65, true))), L("0", "payload")+" json_depth"),
		badCase("payload depth 5000 reported once", e(withPayload(payloadWith(`"a":`+nestedArrays(2000)+`,"b":`+nestedObjects(5000)))), L("0", "payload")+" json_depth"),
		{name: "payload depth configurable", body: e(withPayload(deepPayload(3, false))), lim: Limits{MaxDepth: 2}, want: wantInvalid, errs: []string{L("0", "payload") + " json_depth"}},
		{name: "payload depth configurable ok", body: e(withPayload(deepPayload(2, false))), lim: Limits{MaxDepth: 2}, n: 1},
		badCase("payload depth and message missing both reported", e(withPayload(`{"x":`+nestedArrays(64)+`}`)), L("0", "payload")+" json_depth", L("0", "payload message")+" missing", L("0", "payload timestamp")+" missing"),

		// ---- payload: strings ----
		badCase("payload message invalid UTF-8", e(withPayload("{\"message\":\"\xff\",\"timestamp\":\"2024-01-02T03:04:05Z\"}")), L("0", "payload message")+" string_unicode"),
		badCase("payload nested invalid UTF-8", e(withPayload(payloadWith("\"a\":{\"b\":[0,\"\xc3\x28\"]}"))), L("0", "payload a b 1")+" string_unicode"),
		badCase("payload key invalid UTF-8", e(withPayload(payloadWith("\"k\xff\":1"))), L("0", "payload k\uFFFD [key]")+" string_unicode"),
		badCase("payload NUL in value", e(withPayload(payloadWith(`"a":["x","\u0000"]`))), L("0", "payload a 1")+" string_unicode"),
		badCase("payload NUL in key", e(withPayload(payloadWith(`"a\u0000":1`))), L("0", "payload a\x00 [key]")+" string_unicode"),
		badCase("payload NUL in message", e(withPayload(`{"message":"\u0000","timestamp":"2024-01-02T03:04:05Z"}`)), L("0", "payload message")+" string_unicode"),
		badCase("payload lone surrogate in value", e(withPayload(payloadWith(`"a":"\udfff"`))), L("0", "payload a")+" string_unicode"),
		badCase("payload lone surrogate in key", e(withPayload(payloadWith(`"\ud800":1`))), L("0", "payload \uFFFD [key]")+" string_unicode"),
		badCase("payload surrogate pair split by text", e(withPayload(payloadWith(`"a":"\ud83d-\ude00"`))), L("0", "payload a")+" string_unicode"),
		okCase("payload escaped backslash before u0000 is fine", e(withPayload(payloadWith(`"a":"\\u0000"`))), 1),
		badCase("payload several string problems all reported",
			e(withPayload(payloadWith("\"a\":\"\\u0000\",\"b\":[\"\xff\",{\"c\":\"\\udc00\"}]"))),
			L("0", "payload a")+" string_unicode", L("0", "payload b 0")+" string_unicode", L("0", "payload b 1 c")+" string_unicode"),

		// ---- payload: numbers ----
		pgNumbers(okCase("number 1e131071", e(withPayload(payloadWith(`"n":1e131071`))), 1)),
		pgNumbers(badCase("number 1e131072", e(withPayload(payloadWith(`"n":1e131072`))), L("0", "payload n")+" number_range")),
		pgNumbers(okCase("number 12.5e131070", e(withPayload(payloadWith(`"n":12.5e131070`))), 1)),
		pgNumbers(badCase("number 12.5e131071", e(withPayload(payloadWith(`"n":12.5e131071`))), L("0", "payload n")+" number_range")),
		pgNumbers(okCase("number 0.00001e131076", e(withPayload(payloadWith(`"n":0.00001e131076`))), 1)),
		pgNumbers(okCase("number 1e-16383", e(withPayload(payloadWith(`"n":1e-16383`))), 1)),
		pgNumbers(badCase("number 1e-16384", e(withPayload(payloadWith(`"n":1E-16384`))), L("0", "payload n")+" number_range")),
		pgNumbers(okCase("number -0.5e-16382", e(withPayload(payloadWith(`"n":-0.5e-16382`))), 1)),
		pgNumbers(badCase("number -0.5e-16383", e(withPayload(payloadWith(`"n":-0.5e-16383`))), L("0", "payload n")+" number_range")),
		pgNumbers(okCase("number 16383 fraction digits", e(withPayload(payloadWith(`"n":0.`+strings.Repeat("0", 16382)+`1`))), 1)),
		pgNumbers(badCase("number 16384 fraction digits (zero)", e(withPayload(payloadWith(`"n":0.`+strings.Repeat("0", 16384)))), L("0", "payload n")+" number_range")),
		pgNumbers(okCase("number 0e1073741822", e(withPayload(payloadWith(`"n":0e1073741822`))), 1)),
		pgNumbers(badCase("number 0e1073741823", e(withPayload(payloadWith(`"n":0e1073741823`))), L("0", "payload n")+" number_range")),
		pgNumbers(badCase("number 1e+999999999999999999999", e(withPayload(payloadWith(`"n":1e+999999999999999999999`))), L("0", "payload n")+" number_range")),
		pgNumbers(badCase("number 1e-999999999999999999999", e(withPayload(payloadWith(`"n":[1e-999999999999999999999]`))), L("0", "payload n 0")+" number_range")),
		pgNumbers(okCase("number 0e-16383", e(withPayload(payloadWith(`"n":0e-16383`))), 1)),
		pgNumbers(badCase("number 0e-16384", e(withPayload(payloadWith(`"n":0e-16384`))), L("0", "payload n")+" number_range")),
		okCase("number ordinary", e(withPayload(payloadWith(`"n":[0,-1,3.14,1e39,-2.5E-10,123456789012345678901234567890]`))), 1),
		// Default limits: at most 40 digits before and 40 after the point
		// as PostgreSQL prints the number.
		okCase("number 9.99e39", e(withPayload(payloadWith(`"n":9.99e39`))), 1),
		okCase("number 40 digits", e(withPayload(payloadWith(`"n":-`+strings.Repeat("9", 40)+`.5`))), 1),
		badCase("number 1e40", e(withPayload(payloadWith(`"n":1e40`))), L("0", "payload n")+" number_range"),
		badCase("number 41 digits", e(withPayload(payloadWith(`"n":1`+strings.Repeat("0", 40)))), L("0", "payload n")+" number_range"),
		badCase("number 1e308", e(withPayload(payloadWith(`"n":[1,1e308]`))), L("0", "payload n 1")+" number_range"),
		badCase("number 1e131071", e(withPayload(payloadWith(`"n":1e131071`))), L("0", "payload n")+" number_range"),
		okCase("number 1e-40", e(withPayload(payloadWith(`"n":1e-40`))), 1),
		okCase("number 0.5e-39", e(withPayload(payloadWith(`"n":0.5e-39`))), 1),
		badCase("number 1e-41", e(withPayload(payloadWith(`"n":1e-41`))), L("0", "payload n")+" number_range"),
		badCase("number 5e-324", e(withPayload(payloadWith(`"n":5e-324`))), L("0", "payload n")+" number_range"),
		okCase("number 40 decimals", e(withPayload(payloadWith(`"n":0.`+strings.Repeat("0", 39)+`1`))), 1),
		badCase("number 41 decimals (zero)", e(withPayload(payloadWith(`"n":0.`+strings.Repeat("0", 41)))), L("0", "payload n")+" number_range"),
		okCase("number 1.5e-39 (40 decimals)", e(withPayload(payloadWith(`"n":1.5e-39`))), 1),
		badCase("number 1.25e-40 (42 decimals)", e(withPayload(payloadWith(`"n":1.25e-40`))), L("0", "payload n")+" number_range"),

		// ---- events element types ----
		badCase("event is a number", e("5"), "[body events 0] dict_type"),
		badCase("event is null", e("null"), "[body events 0] dict_type"),
		badCase("event is a string", e(`"x"`), "[body events 0] dict_type"),
		badCase("event is an array", e(`[`+def+`]`), "[body events 0] dict_type"),
		badCase("event empty object", e(`{}`),
			L("0", "event_id")+" missing", L("0", "topic")+" missing", L("0", "source")+" missing", L("0", "timestamp")+" missing", L("0", "payload")+" missing"),

		// ---- several errors, several events ----
		badCase("every bad field of every event",
			e(def,
				evSpec{id: q(strings.Repeat("a", 1025)), topic: `5`, source: `"s"`, ts: `"nope"`, payload: `{"message":"m","timestamp":"2024-01-02T03:04:05Z","n":1e999999}`}.json(),
				def,
				`7`,
				evSpec{id: `""`, topic: `"t"`, source: omit, ts: okTS, payload: `{"message":1}`}.json()),
			L("1", "event_id")+" string_too_long",
			L("1", "topic")+" string_type",
			L("1", "timestamp")+" datetime_parsing",
			L("1", "payload n")+" number_range",
			"[body events 3] dict_type",
			L("4", "event_id")+" string_too_short",
			L("4", "source")+" missing",
			L("4", "payload message")+" string_type",
			L("4", "payload timestamp")+" missing",
		),

		// ---- request level ----
		refusedCase("empty body", []byte(""), wantMalformed),
		refusedCase("whitespace body", []byte(" \n "), wantMalformed),
		refusedCase("null body", []byte("null"), wantMalformed),
		refusedCase("array body", []byte("[]"), wantMalformed),
		refusedCase("string body", []byte(`"events"`), wantMalformed),
		refusedCase("number body", []byte(`1`), wantMalformed),
		refusedCase("empty object", []byte(`{}`), wantMalformed),
		refusedCase("no events key", []byte(`{"event":[]}`), wantMalformed),
		refusedCase("events case-sensitive", []byte(`{"Events":[]}`), wantMalformed),
		refusedCase("events object", []byte(`{"events":{}}`), wantMalformed),
		refusedCase("events number", []byte(`{"events":1}`), wantMalformed),
		refusedCase("events string", []byte(`{"events":"[]"}`), wantMalformed),
		refusedCase("events bool", []byte(`{"events":false}`), wantMalformed),
		{name: "events null", body: []byte(`{"events":null}`), want: wantInvalid, errs: []string{"[body events] list_type"}},
		refusedCase("trailing garbage", []byte(`{"events":[]} x`), wantMalformed),
		refusedCase("two values", []byte(`{"events":[]}{"events":[]}`), wantMalformed),
		refusedCase("trailing comma in array", []byte(`{"events":[`+def+`,]}`), wantMalformed),
		refusedCase("trailing comma in object", []byte(`{"events":[],}`), wantMalformed),
		refusedCase("unclosed array", []byte(`{"events":[`), wantMalformed),
		refusedCase("unclosed object", []byte(`{"events":[]`), wantMalformed),
		refusedCase("unclosed string", []byte(`{"events":[],"a":"`), wantMalformed),
		refusedCase("missing colon", []byte(`{"events" []}`), wantMalformed),
		refusedCase("single quotes", []byte(`{'events':[]}`), wantMalformed),
		refusedCase("NaN", []byte(`{"events":[],"x":NaN}`), wantMalformed),
		refusedCase("Infinity", []byte(`{"events":[],"x":-Infinity}`), wantMalformed),
		refusedCase("leading zero", []byte(`{"events":[],"x":01}`), wantMalformed),
		refusedCase("bare minus", []byte(`{"events":[],"x":-}`), wantMalformed),
		refusedCase("dot without digits", []byte(`{"events":[],"x":1.}`), wantMalformed),
		refusedCase("exponent without digits", []byte(`{"events":[],"x":1e}`), wantMalformed),
		refusedCase("plus sign", []byte(`{"events":[],"x":+1}`), wantMalformed),
		refusedCase("bad literal", []byte(`{"events":[],"x":tru}`), wantMalformed),
		refusedCase("literal with suffix", []byte(`{"events":[],"x":nullx}`), wantMalformed),
		refusedCase("comment", []byte(`{"events":[]/*c*/}`), wantMalformed),
		refusedCase("invalid escape", []byte(`{"events":[],"x":"\x"}`), wantMalformed),
		refusedCase("short unicode escape", []byte(`{"events":[],"x":"\u12"}`), wantMalformed),
		refusedCase("non-hex unicode escape", []byte(`{"events":[],"x":"\u12g4"}`), wantMalformed),
		refusedCase("raw tab in string", []byte("{\"events\":[],\"x\":\"a\tb\"}"), wantMalformed),
		refusedCase("raw NUL in payload string", e(withPayload("{\"message\":\"a\x00\",\"timestamp\":\"2024-01-02T03:04:05Z\"}")), wantMalformed),
		refusedCase("invalid UTF-8 outside strings", []byte("{\"events\":[]}\xff"), wantMalformed),
		refusedCase("invalid UTF-8 as whitespace", []byte("{\"events\":\xa0[]}"), wantMalformed),
		refusedCase("UTF-8 BOM", []byte("\xef\xbb\xbf{\"events\":[]}"), wantMalformed),
		refusedCase("non-breaking space", []byte("{\"events\":[]}\u00a0"), wantMalformed),
		refusedCase("syntax error inside an event", e(`{"event_id":"a" "topic":"t"}`), wantMalformed),
		refusedCase("syntax error in deep ignored value", []byte(`{"x":`+strings.Repeat("[", 100000)+`,"events":[]}`), wantMalformed),
		okCase("deep ignored value is fine", []byte(`{"x":`+nestedArrays(100000)+`,"events":[]}`), 0),

		// ---- batch size ----
		{name: "batch at limit", body: e(def, def, def), lim: Limits{MaxBatch: 3}, n: 3},
		{name: "batch over limit", body: e(def, def, def, def), lim: Limits{MaxBatch: 3}, want: wantTooLarge},
		{name: "batch over limit of invalid events is 413, not 422", body: e("1", "2", "3", "4"), lim: Limits{MaxBatch: 3}, want: wantTooLarge},
		{name: "batch over limit but syntax error is 400", body: []byte(`{"events":[1,2,3,4,}`), lim: Limits{MaxBatch: 3}, want: wantMalformed},
		{name: "batch over limit then trailing garbage is 400", body: []byte(`{"events":[1,2,3,4]}]`), lim: Limits{MaxBatch: 3}, want: wantMalformed},
		{name: "last events key counts for limit", body: []byte(`{"events":[1,2,3,4],"events":[]}`), lim: Limits{MaxBatch: 3}, n: 0},
		refusedCase("default limit 10001", e(strings.Split(strings.Repeat("0,", 10001), ",")[:10001]...), wantTooLarge),
	}
	return cases
}

func TestDecodeRequest(t *testing.T) {
	for _, tc := range decodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			lim := tc.lim
			if lim == (Limits{}) {
				lim = DefaultLimits()
			}
			evs, err := DecodeRequest(tc.body, lim)
			switch tc.want {
			case wantOK:
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if len(evs) != tc.n {
					t.Fatalf("got %d events, want %d", len(evs), tc.n)
				}
				if evs == nil {
					t.Fatalf("nil slice on success")
				}
				checkEventsInvariants(t, tc.body, lim, evs)
				if tc.check != nil {
					tc.check(t, evs)
				}
			case wantInvalid:
				if evs != nil {
					t.Errorf("events returned with error")
				}
				ve := asValidation(t, err)
				got := errSummary(ve)
				if !reflect.DeepEqual(got, tc.errs) {
					t.Fatalf("errors:\n got  %q\n want %q", got, tc.errs)
				}
				for _, fe := range ve.Errors {
					if fe.Msg == "" {
						t.Errorf("empty msg for %v", fe)
					}
				}
				// The response body must be encodable JSON.
				if _, err := json.Marshal(map[string]any{"detail": ve.Errors}); err != nil {
					t.Fatal(err)
				}
				if ve.Error() == "" {
					t.Error("empty Error()")
				}
			default:
				re := asRequest(t, err)
				if re.Kind != tc.want.kind() {
					t.Fatalf("kind %v (%s), want %v", re.Kind, re.Msg, tc.want.kind())
				}
				if re.Msg == "" || strings.Contains(re.Msg, "\n") || re.Error() != re.Msg {
					t.Errorf("bad message %q", re.Msg)
				}
			}
		})
	}
}

// checkEventsInvariants re-checks a successful result with simple,
// independent means (encoding/json, unicode/utf8).
func checkEventsInvariants(t *testing.T, body []byte, lim Limits, evs []Event) {
	t.Helper()
	lim = lim.normalized()
	if len(evs) > lim.MaxBatch {
		t.Fatalf("%d events over the limit %d", len(evs), lim.MaxBatch)
	}
	if !json.Valid(body) {
		if stdTooDeep(body) {
			return // beyond encoding/json's nesting limit; nothing to compare with
		}
		t.Fatalf("accepted a body that encoding/json says is invalid")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(top["events"], &raws); err != nil || len(raws) != len(evs) {
		t.Fatalf("encoding/json events: %v (%d vs %d)", err, len(raws), len(evs))
	}
	for i, ev := range evs {
		for _, f := range []struct {
			name     string
			s        string
			min, max int
		}{{"event_id", ev.EventID, 1, 1024}, {"topic", ev.Topic, 0, 255}, {"source", ev.Source, 0, 255}} {
			if !utf8.ValidString(f.s) || strings.IndexByte(f.s, 0) >= 0 || len(f.s) < f.min || len(f.s) > f.max {
				t.Fatalf("event %d: bad %s %q", i, f.name, f.s)
			}
		}
		if ev.Timestamp.Location() != time.UTC || ev.Timestamp.Year() < 1 || ev.Timestamp.Year() > 9999 {
			t.Fatalf("event %d: bad timestamp %v", i, ev.Timestamp)
		}
		if len(ev.Payload) == 0 || ev.Payload[0] != '{' || !json.Valid(ev.Payload) || len(ev.Payload) > lim.MaxPayloadBytes {
			t.Fatalf("event %d: bad payload %s", i, ev.Payload)
		}
		if !utf8.Valid(ev.Payload) {
			t.Fatalf("event %d: payload not UTF-8", i)
		}
		// Compare with encoding/json's view of the same event.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raws[i], &m); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var id, topic, source string
		if json.Unmarshal(m["event_id"], &id) != nil || json.Unmarshal(m["topic"], &topic) != nil || json.Unmarshal(m["source"], &source) != nil {
			t.Fatalf("event %d: encoding/json cannot read the strings", i)
		}
		if id != ev.EventID || topic != ev.Topic || source != ev.Source {
			t.Fatalf("event %d: encoding/json disagrees: %q/%q/%q vs %q/%q/%q", i, id, topic, source, ev.EventID, ev.Topic, ev.Source)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, m["payload"]); err != nil || !bytes.Equal(compact.Bytes(), ev.Payload) {
			t.Fatalf("event %d: payload %s is not the compacted %s", i, ev.Payload, m["payload"])
		}
		var p any
		dec := json.NewDecoder(bytes.NewReader(ev.Payload))
		dec.UseNumber()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("event %d: payload: %v", i, err)
		}
		if d := jsonDepth(p); d > lim.MaxDepth {
			t.Fatalf("event %d: payload depth %d", i, d)
		}
		if !noNUL(p) {
			t.Fatalf("event %d: payload contains NUL", i)
		}
		pm := p.(map[string]any)
		if _, ok := pm["message"].(string); !ok {
			t.Fatalf("event %d: payload message not a string", i)
		}
		if s, ok := pm["timestamp"].(string); !ok {
			t.Fatalf("event %d: payload timestamp not a string", i)
		} else if _, err := ParseTimestamp(s); err != nil {
			t.Fatalf("event %d: payload timestamp: %v", i, err)
		}
	}
	// Batch round trip.
	back, err := UnmarshalBatch(MarshalBatch(evs))
	if err != nil {
		t.Fatalf("UnmarshalBatch: %v", err)
	}
	if !reflect.DeepEqual(back, evs) {
		t.Fatalf("batch round trip mismatch:\n%+v\n%+v", back, evs)
	}
}

// stdTooDeep reports whether body nests deeper than encoding/json's limit of
// 10000 (brackets inside strings are ignored).
func stdTooDeep(body []byte) bool {
	depth, inStr, esc := 0, false, false
	for _, c := range body {
		switch {
		case inStr:
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '[' || c == '{':
			if depth++; depth > 10000 {
				return true
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return false
}

func jsonDepth(v any) int {
	switch x := v.(type) {
	case map[string]any:
		d := 0
		for _, e := range x {
			d = max(d, jsonDepth(e))
		}
		return d + 1
	case []any:
		d := 0
		for _, e := range x {
			d = max(d, jsonDepth(e))
		}
		return d + 1
	}
	return 0
}

func noNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.IndexByte(x, 0) < 0
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 || !noNUL(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !noNUL(e) {
				return false
			}
		}
	}
	return true
}

func TestDecodeRequestErrorCap(t *testing.T) {
	// 10000 empty events -> 50000 problems: validation stops at MaxErrors,
	// and the list holds what fits MaxErrorBytes plus one entry counting
	// the rest.
	body := reqBody(strings.Split(strings.Repeat("{},", 10000), ",")[:10000]...)
	_, err := DecodeRequest(body, DefaultLimits())
	ve := asValidation(t, err)
	n := len(ve.Errors)
	last := ve.Errors[n-1]
	want := fmt.Sprintf("...and %d more errors", MaxErrors-(n-1))
	if last.Type != TypeTooManyErrors || !strings.HasPrefix(last.Msg, want) || !strings.Contains(last.Msg, "may be more") {
		t.Fatalf("last entry %+v, want type %s and msg %q...", last, TypeTooManyErrors, want)
	}
	if got := locString(ve.Errors[0].Loc); got != "[body events 0 event_id]" {
		t.Fatalf("first loc %s", got)
	}
	enc, err := json.Marshal(ve.Errors[:n-1])
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > MaxErrorBytes || len(enc) < MaxErrorBytes-400 {
		t.Fatalf("listed errors encode to %d bytes, want just under MaxErrorBytes (%d)", len(enc), MaxErrorBytes)
	}
}

// A payload key of any length appears in an error location cut to
// MaxLocBytes, whatever it holds (escapes, multi-byte characters).
func TestDecodeRequestLongKeyLoc(t *testing.T) {
	for _, key := range []string{
		strings.Repeat("<", 55_000),
		strings.Repeat(`\u00e9`, 10_000),
		strings.Repeat("é", 33) + strings.Repeat(`\n`, 100),
		strings.Repeat("a", MaxLocBytes),
	} {
		p := `{"message":"m","timestamp":"2024-01-02T03:04:05Z","` + key + `":["\u0000","\u0000"]}`
		_, err := DecodeRequest(reqBody(withPayload(p)), DefaultLimits())
		ve := asValidation(t, err)
		if len(ve.Errors) != 2 {
			t.Fatalf("key %.20s: %d errors, want 2", key, len(ve.Errors))
		}
		for _, fe := range ve.Errors {
			k, _ := fe.Loc[4].(string)
			if len(k) > MaxLocBytes+3 || !utf8.ValidString(k) {
				t.Fatalf("key %.20s: loc element %q (%d bytes), want <= %d valid UTF-8", key, k, len(k), MaxLocBytes+3)
			}
			if len(key) > MaxLocBytes && !strings.HasSuffix(k, "…") {
				t.Fatalf("key %.20s: cut loc element %q does not end with the ellipsis", key, k)
			}
			if len(key) == MaxLocBytes && k != key {
				t.Fatalf("key of exactly MaxLocBytes cut: %q", k)
			}
		}
	}
}

func TestDecodeRequestMessages(t *testing.T) {
	body := reqBody(
		withID(`""`),
		withTopic(q(strings.Repeat("t", 256))),
		withID(q(strings.Repeat("a", 1025))),
		withTS(`"2024-01-02"`),
		withPayload(sizedPayload(65537)),
		withPayload(deepPayload(65, false)),
		withID(`"\u0000"`),
		withID(`"\ud800"`),
		withID("\"\xff\""),
		withID(`1`),
		withID(omit),
		"1",
	)
	_, err := DecodeRequest(body, Limits{})
	ve := asValidation(t, err)
	want := []FieldError{
		{Loc: []any{"body", "events", 0, "event_id"}, Msg: "String should have at least 1 byte", Type: "string_too_short"},
		{Loc: []any{"body", "events", 1, "topic"}, Msg: "String should have at most 255 bytes", Type: "string_too_long"},
		{Loc: []any{"body", "events", 2, "event_id"}, Msg: "String should have at most 1024 bytes", Type: "string_too_long"},
		{Loc: []any{"body", "events", 3, "timestamp"}, Msg: "Input should be a valid datetime, a time of day is required (date-only input)", Type: "datetime_parsing"},
		{Loc: []any{"body", "events", 4, "payload"}, Msg: "Payload should be at most 65536 bytes, got 65537", Type: "payload_too_large"},
		{Loc: []any{"body", "events", 5, "payload"}, Msg: "Payload should be nested at most 64 levels deep", Type: "json_depth"},
		{Loc: []any{"body", "events", 6, "event_id"}, Msg: msgNUL, Type: "string_unicode"},
		{Loc: []any{"body", "events", 7, "event_id"}, Msg: msgSurrogate, Type: "string_unicode"},
		{Loc: []any{"body", "events", 8, "event_id"}, Msg: msgBadUTF8, Type: "string_unicode"},
		{Loc: []any{"body", "events", 9, "event_id"}, Msg: "Input should be a valid string", Type: "string_type"},
		{Loc: []any{"body", "events", 10, "event_id"}, Msg: "Field required", Type: "missing"},
		{Loc: []any{"body", "events", 11}, Msg: "Input should be a valid dictionary or object", Type: "dict_type"},
	}
	if !reflect.DeepEqual(ve.Errors, want) {
		t.Fatalf("got\n%#v\nwant\n%#v", ve.Errors, want)
	}
	js, err := json.Marshal(map[string]any{"detail": ve.Errors[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(js); got != `{"detail":[{"loc":["body","events",0,"event_id"],"msg":"String should have at least 1 byte","type":"string_too_short"}]}` {
		t.Fatalf("json %s", got)
	}
}

func TestDecodeRequestDoesNotAliasBody(t *testing.T) {
	body := reqBody(defEv().json(), defEv().json())
	evs, err := DecodeRequest(body, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := MarshalBatch(evs)
	for i := range body {
		body[i] = 'X'
	}
	if got := MarshalBatch(evs); !bytes.Equal(got, want) {
		t.Fatalf("events changed after the body was overwritten")
	}
	// Appending to one payload must not clobber the next one.
	p0 := append(evs[0].Payload, "junk"...)
	_ = p0
	if string(evs[1].Payload) != okPayload {
		t.Fatalf("payload 1 clobbered: %s", evs[1].Payload)
	}
}

func TestLimitsDefaults(t *testing.T) {
	if got := (Limits{}).normalized(); got != DefaultLimits() {
		t.Fatalf("%+v", got)
	}
	if got := (Limits{MaxBatch: -1, MaxPayloadBytes: -1, MaxDepth: -1}).normalized(); got != DefaultLimits() {
		t.Fatalf("%+v", got)
	}
	if DefaultLimits() != (Limits{MaxBatch: 10000, MaxPayloadBytes: 65536, MaxDepth: 64, MaxNumberIntDigits: 40, MaxNumberFracDigits: 40, MaxErrorBytes: 16384}) {
		t.Fatalf("%+v", DefaultLimits())
	}
}

func TestKey(t *testing.T) {
	e := Event{EventID: "id", Topic: "tp"}
	if e.Key() != (Key{Topic: "tp", EventID: "id"}) {
		t.Fatal(e.Key())
	}
}

// TestPlainFastPathEquivalence re-runs the table with a non-ASCII ignored
// top-level member prepended, which disables the "plain body" fast path, and
// checks that the outcome is identical.
func TestPlainFastPathEquivalence(t *testing.T) {
	for _, tc := range decodeCases() {
		if tc.want != wantOK && tc.want != wantInvalid {
			continue
		}
		b := bytes.TrimLeft(tc.body, " \t\r\n")
		if len(b) == 0 || b[0] != '{' {
			continue
		}
		alt := append([]byte(`{"zz":"é\n",`), b[1:]...)
		if bytes.HasPrefix(b, []byte("{}")) {
			continue
		}
		lim := tc.lim
		evs1, err1 := DecodeRequest(tc.body, lim)
		evs2, err2 := DecodeRequest(alt, lim)
		if !reflect.DeepEqual(evs1, evs2) {
			t.Errorf("%s: events differ", tc.name)
		}
		if (err1 == nil) != (err2 == nil) {
			t.Errorf("%s: errors differ: %v / %v", tc.name, err1, err2)
			continue
		}
		if err1 != nil {
			var v1, v2 *ValidationError
			if errors.As(err1, &v1) && errors.As(err2, &v2) {
				if !reflect.DeepEqual(v1, v2) {
					t.Errorf("%s: validation errors differ:\n%v\n%v", tc.name, v1, v2)
				}
			} else {
				t.Errorf("%s: %v / %v", tc.name, err1, err2)
			}
		}
	}
}
