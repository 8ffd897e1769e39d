package properties

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// TestBadInput: requests breaking the contract (each rule alone and in
// combination, mixed into otherwise valid events) get the documented
// status: 415 for a content type other than JSON, 413 for a body over
// MAX_BODY_BYTES or more than MAX_BATCH events, 400 for malformed JSON or
// a wrong top-level shape, else 422 with a detail entry whose loc names
// every bad field. Some bad events also carry drawn members of arbitrary
// shape (objects in arrays in objects, up to 6 levels, some arrays wide)
// holding one invalid value (\u0000, a lone surrogate, invalid UTF-8, a
// number PostgreSQL cannot store, a bad key, a value over 64 KiB) at a
// drawn depth, directly inside an array as often as not: the 422 names its
// path. They store nothing: after a drain (up to a valid request of 1-3
// sentinels sent last, their payloads drawn of arbitrary shape) the stats
// and audit grew by the sentinels alone, and only the sentinels' rows
// exist, each payload as sent (compared as JSON values); the valid events
// of a rejected request are not stored either.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := useSharedEnv(t, "api", env.LocalOptions{Settings: apiSettings})
	st := newRunStats(t)
	defer recordClean(t, propBad, st)
	check(t, badChecks, st, badInput(e, true))
}

const propBad = "bad input"

// rawField is one member of a JSON object as raw bytes (the value may be
// invalid UTF-8 or anything else); rawKey, when set, is the member's key as
// raw JSON text, else name is quoted.
type rawField struct {
	name   string
	value  string
	rawKey string
}

// rawEvent is an event built member by member; notObject, when set,
// replaces the whole event.
type rawEvent struct {
	fields    []rawField
	payload   []rawField
	notObject string
	breaks    []string // names of the rules broken, for the log
	locs      [][]any  // expected detail locs after ["body","events",i]
}

func (r *rawEvent) set(list *[]rawField, name, value string) {
	for i := range *list {
		if (*list)[i].name == name {
			(*list)[i].value = value
			return
		}
	}
	*list = append(*list, rawField{name: name, value: value})
}

func (r *rawEvent) drop(list *[]rawField, name string) {
	out := (*list)[:0]
	for _, f := range *list {
		if f.name != name {
			out = append(out, f)
		}
	}
	*list = out
}

func (r *rawEvent) encode(b *bytes.Buffer) {
	if r.notObject != "" {
		b.WriteString(r.notObject)
		return
	}
	b.WriteByte('{')
	for i, f := range r.fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(f.name) + ":")
		if f.name == "payload" && f.value == "" {
			writeObject(b, r.payload)
			continue
		}
		b.WriteString(f.value)
	}
	b.WriteByte('}')
}

func writeObject(b *bytes.Buffer, fields []rawField) {
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		if f.rawKey != "" {
			b.WriteString(f.rawKey + ":" + f.value)
		} else {
			b.WriteString(strconv.Quote(f.name) + ":" + f.value)
		}
	}
	b.WriteByte('}')
}

// validRaw is a valid event of key k; its payload member is built from
// payload fields (value "" in fields means "the payload object").
func validRaw(k history.Key, seq int) *rawEvent {
	ts := baseTime.Add(time.Duration(seq) * time.Second).Format(time.RFC3339)
	return &rawEvent{
		fields: []rawField{
			{name: "event_id", value: jsonString(k.ID)}, {name: "topic", value: jsonString(k.Topic)}, {name: "source", value: `"properties"`},
			{name: "timestamp", value: jsonString(ts)}, {name: "payload", value: ""},
		},
		payload: []rawField{{name: "message", value: `"hello"`}, {name: "timestamp", value: jsonString(ts)}, {name: "seq", value: strconv.Itoa(seq)}},
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A breakage breaks one rule of one part of an event.
type breakage struct {
	name string
	part string // what it breaks: a field, "payload" (whole), "payload.x", or "event"
	loc  []any  // expected loc after ["body","events",i]
	do   func(r *rawEvent, k history.Key)
}

// Parts that exclude each other: breaking the whole event or the whole
// payload leaves nothing else to inspect.
func excludes(a, b string) bool {
	if a == b || a == "event" || b == "event" {
		return true
	}
	whole := func(x string) bool { return x == "payload" }
	sub := func(x string) bool { return strings.HasPrefix(x, "payload.") }
	return whole(a) && sub(b) || whole(b) && sub(a)
}

func long(n int) string { return strings.Repeat("x", n) }

// deep is a JSON value nested n arrays deep.
func deep(n int) string { return strings.Repeat("[", n) + "1" + strings.Repeat("]", n) }

var breakages = func() []breakage {
	var bs []breakage
	add := func(name, part string, loc []any, do func(r *rawEvent, k history.Key)) {
		bs = append(bs, breakage{name, part, loc, do})
	}
	field := func(f string) func(string) func(r *rawEvent, k history.Key) {
		return func(v string) func(r *rawEvent, k history.Key) {
			return func(r *rawEvent, _ history.Key) { r.set(&r.fields, f, v) }
		}
	}
	missing := func(f string) func(r *rawEvent, k history.Key) {
		return func(r *rawEvent, _ history.Key) { r.drop(&r.fields, f) }
	}
	for _, f := range []string{"event_id", "topic", "source", "timestamp", "payload"} {
		add(f+" missing", f, []any{f}, missing(f))
	}
	// Wrong JSON types.
	add("event_id a number", "event_id", []any{"event_id"}, field("event_id")(`123`))
	add("topic null", "topic", []any{"topic"}, field("topic")(`null`))
	add("source a boolean", "source", []any{"source"}, field("source")(`true`))
	add("timestamp a number", "timestamp", []any{"timestamp"}, field("timestamp")(`1700000000`))
	add("payload a string", "payload", []any{"payload"}, field("payload")(`"text"`))
	add("payload an array", "payload", []any{"payload"}, field("payload")(`[1,2]`))
	add("payload null", "payload", []any{"payload"}, field("payload")(`null`))
	add("event a number", "event", nil, func(r *rawEvent, _ history.Key) { r.notObject = `42` })
	add("event an array", "event", nil, func(r *rawEvent, _ history.Key) { r.notObject = `[]` })
	// Lengths.
	add("event_id empty", "event_id", []any{"event_id"}, field("event_id")(`""`))
	add("event_id 1025 bytes", "event_id", []any{"event_id"}, func(r *rawEvent, k history.Key) {
		r.set(&r.fields, "event_id", jsonString(k.ID+"-"+long(1024-len(k.ID))))
	})
	add("topic 256 bytes", "topic", []any{"topic"}, func(r *rawEvent, k history.Key) {
		r.set(&r.fields, "topic", jsonString(k.Topic+"-"+long(255-len(k.Topic))))
	})
	add("source 256 bytes", "source", []any{"source"}, field("source")(jsonString(long(256))))
	// Timestamps.
	for _, ts := range []string{"not a time", "2024-13-01T00:00:00Z", "2024-01-01", "", "2024-01-01T00:00:00+25:00", "2024-02-30T10:00:00Z"} {
		add(fmt.Sprintf("timestamp %q", ts), "timestamp", []any{"timestamp"}, field("timestamp")(jsonString(ts)))
	}
	// Strings PostgreSQL cannot hold.
	add("event_id invalid UTF-8", "event_id", []any{"event_id"}, func(r *rawEvent, k history.Key) {
		r.set(&r.fields, "event_id", `"`+k.ID+"\xff\xfe"+`"`)
	})
	add("topic invalid UTF-8", "topic", []any{"topic"}, func(r *rawEvent, k history.Key) {
		r.set(&r.fields, "topic", `"`+k.Topic+"\xc3("+`"`)
	})
	add("source invalid UTF-8", "source", []any{"source"}, field("source")("\"src\xed\xa0\x80\""))
	add(`event_id with \u0000`, "event_id", []any{"event_id"}, func(r *rawEvent, k history.Key) {
		r.set(&r.fields, "event_id", `"`+k.ID+`\u0000"`)
	})
	add(`source with \u0000`, "source", []any{"source"}, field("source")(`"a\u0000b"`))
	add(`topic with lone surrogate`, "topic", []any{"topic"}, func(r *rawEvent, k history.Key) {
		r.set(&r.fields, "topic", `"`+k.Topic+`\ud800"`)
	})
	add(`event_id with lone low surrogate`, "event_id", []any{"event_id"}, func(r *rawEvent, k history.Key) {
		r.set(&r.fields, "event_id", `"`+k.ID+`\udc00x"`)
	})
	// Payload.
	payloadField := func(f string) func(string) func(r *rawEvent, k history.Key) {
		return func(v string) func(r *rawEvent, k history.Key) {
			return func(r *rawEvent, _ history.Key) { r.set(&r.payload, f, v) }
		}
	}
	add("payload over 64 KiB", "payload", []any{"payload"}, payloadField("pad")(jsonString(long(64<<10))))
	add("payload nested 70 deep", "payload", []any{"payload"}, payloadField("deep")(deep(70)))
	add("payload without message", "payload.message", []any{"payload", "message"},
		func(r *rawEvent, _ history.Key) { r.drop(&r.payload, "message") })
	add("payload message a number", "payload.message", []any{"payload", "message"}, payloadField("message")(`5`))
	add("payload message an object", "payload.message", []any{"payload", "message"}, payloadField("message")(`{}`))
	add("payload message invalid UTF-8", "payload.message", []any{"payload", "message"}, payloadField("message")("\"bad \xff\""))
	add(`payload message with \u0000`, "payload.message", []any{"payload", "message"}, payloadField("message")(`"nul \u0000"`))
	add("payload message with lone surrogate", "payload.message", []any{"payload", "message"}, payloadField("message")(`"\udfff"`))
	add("payload without timestamp", "payload.timestamp", []any{"payload", "timestamp"},
		func(r *rawEvent, _ history.Key) { r.drop(&r.payload, "timestamp") })
	add("payload timestamp a boolean", "payload.timestamp", []any{"payload", "timestamp"}, payloadField("timestamp")(`false`))
	add("payload timestamp unparsable", "payload.timestamp", []any{"payload", "timestamp"}, payloadField("timestamp")(`"soon"`))
	add("payload number 1e200000", "payload.n", []any{"payload", "n"}, payloadField("n")(`1e200000`))
	add("payload number 1e-20000", "payload.n", []any{"payload", "n"}, payloadField("n")(`1e-20000`))
	return bs
}()

// Request-level faults.
const (
	rqWrongType  = "content type text/plain"
	rqTooBig     = "body over MAX_BODY_BYTES"
	rqMalformed  = "malformed JSON (cut short)"
	rqNotObject  = "top level an array"
	rqNoEvents   = `no "events" member`
	rqEventsObj  = `"events" an object`
	rqEventsNull = `"events" null`
	rqTooMany    = "more than MAX_BATCH events"
)

var requestFaults = []string{rqWrongType, rqTooBig, rqMalformed, rqNotObject, rqNoEvents, rqEventsObj, rqEventsNull, rqTooMany}

// badRequest is a drawn invalid request and what the service must answer.
type badRequest struct {
	contentType string
	body        []byte
	keys        []history.Key // the keys its events were built from
	status      int
	locs        [][]any // for 422: every loc the detail must name
	desc        string
}

// nestedPart is what a nested bad value breaks (one per event); one that
// makes the payload too large breaks the whole payload.
const nestedPart = "payload.nested"

// drawBadRequest draws an invalid request; nested adds, to some bad
// events, drawn members of arbitrary shape holding an invalid value at a
// drawn depth (placeBad).
func drawBadRequest(t *rapid.T, sp space, r int, nextID *int, nested bool) badRequest {
	n := rapid.IntRange(1, 8).Draw(t, "events")
	evs := make([]*rawEvent, n)
	var keys []history.Key
	for i := range evs {
		k := sp.key(i%2, *nextID)
		*nextID++
		keys = append(keys, k)
		evs[i] = validRaw(k, *nextID)
	}
	// Event faults: some events, each with 1..3 breakages on parts that
	// do not exclude each other.
	var faults []string
	if rapid.IntRange(0, 5).Draw(t, "request fault?") == 0 {
		faults = append(faults, rapid.SampledFrom(requestFaults).Draw(t, "request fault"))
		if rapid.IntRange(0, 3).Draw(t, "second request fault?") == 0 {
			faults = append(faults, rapid.SampledFrom(requestFaults).Draw(t, "second request fault"))
		}
	}
	bad := rapid.IntRange(0, n).Draw(t, "bad events")
	if bad == 0 && len(faults) == 0 {
		bad = 1
	}
	var locs [][]any
	var parts []string
	for j := range bad {
		i := rapid.IntRange(0, n-1).Draw(t, fmt.Sprintf("bad event %d", j))
		re := evs[i]
		m := rapid.IntRange(1, 3).Draw(t, "breakages")
		for range m {
			b := rapid.SampledFrom(breakages).Draw(t, "breakage")
			if conflicts(re, b) {
				continue
			}
			b.do(re, keys[i])
			re.breaks = append(re.breaks, b.part+"\x00"+b.name)
			re.locs = append(re.locs, append([]any{"body", "events", i}, b.loc...))
		}
		if nested && rapid.Bool().Draw(t, "nested bad value?") {
			addNestedBad(t, re, i)
		}
	}
	for i, re := range evs {
		locs = append(locs, re.locs...)
		if len(re.breaks) > 0 {
			names := make([]string, len(re.breaks))
			for j, b := range re.breaks {
				_, names[j], _ = strings.Cut(b, "\x00")
			}
			parts = append(parts, fmt.Sprintf("%d: %s", i, strings.Join(names, " + ")))
		}
	}

	br := badRequest{contentType: "application/json", keys: keys}
	has := func(f string) bool {
		for _, x := range faults {
			if x == f {
				return true
			}
		}
		return false
	}
	if has(rqTooMany) {
		for i := len(evs); i <= maxBatch; i++ {
			k := sp.key(0, *nextID)
			*nextID++
			br.keys = append(br.keys, k)
			evs = append(evs, validRaw(k, *nextID))
		}
	}
	var b bytes.Buffer
	switch {
	case has(rqNotObject):
		b.WriteString(`[`)
		writeEvents(&b, evs)
		b.WriteString(`]`)
	case has(rqNoEvents):
		b.WriteString(`{"evnts":[`)
		writeEvents(&b, evs)
		b.WriteString(`]}`)
	case has(rqEventsObj):
		b.WriteString(`{"events":{"0":`)
		evs[0].encode(&b)
		b.WriteString(`}}`)
	case has(rqEventsNull):
		b.WriteString(`{"events":null}`)
	default:
		b.WriteString(`{"events":[`)
		writeEvents(&b, evs)
		b.WriteString(`]`)
		if has(rqTooBig) {
			b.WriteString(`,"pad":` + jsonString(long(maxBodyBytes)))
		}
		b.WriteString(`}`)
	}
	br.body = b.Bytes()
	if has(rqMalformed) {
		cut := rapid.IntRange(1, min(20, len(br.body)-1)).Draw(t, "cut")
		br.body = br.body[:len(br.body)-cut]
	}
	if has(rqWrongType) {
		br.contentType = "text/plain"
	}

	// The documented answer, by precedence.
	switch {
	case has(rqWrongType):
		br.status = http.StatusUnsupportedMediaType
	case len(br.body) > maxBodyBytes:
		br.status = http.StatusRequestEntityTooLarge
	case has(rqMalformed), has(rqNotObject), has(rqNoEvents), has(rqEventsObj):
		br.status = http.StatusBadRequest
	case has(rqEventsNull):
		br.status = http.StatusUnprocessableEntity
		br.locs = [][]any{{"body", "events"}}
	case len(evs) > maxBatch:
		br.status = http.StatusRequestEntityTooLarge
	default:
		br.status = http.StatusUnprocessableEntity
		br.locs = locs
	}
	if len(locs) == 0 && br.status == http.StatusUnprocessableEntity && !has(rqEventsNull) {
		// Every drawn breakage conflicted: nothing is wrong with the events.
		t.Skip("no breakage applied")
	}
	br.desc = fmt.Sprintf("request %d: %d events, %d bytes", r, len(evs), len(br.body))
	if len(faults) > 0 {
		br.desc += ", " + strings.Join(faults, " + ")
	}
	if len(parts) > 0 {
		br.desc += ", events {" + strings.Join(parts, "; ") + "}"
	}
	br.desc += fmt.Sprintf(" -> want %d", br.status)
	return br
}

// addNestedBad adds to re's payload drawn members of arbitrary shape with
// one invalid value placed among them, unless a breakage already applied
// excludes it.
func addNestedBad(t *rapid.T, re *rawEvent, i int) {
	if conflicts(re, breakage{part: nestedPart}) {
		return
	}
	root := &jnode{kind: 'o'}
	budget := nestNodes
	drawMembers(t, root, 1, 4, 1, &budget, payloadNames...)
	what, loc := placeBad(t, nestedPayload{root: root})
	part := nestedPart
	if len(loc) == 1 { // the payload as a whole (too large)
		part = "payload"
		if conflicts(re, breakage{part: part}) {
			return
		}
	}
	for j, kid := range root.kids {
		re.payload = append(re.payload, rawField{name: root.names[j], rawKey: root.keys[j], value: kid.String()})
	}
	re.breaks = append(re.breaks, part+"\x00nested: "+what)
	re.locs = append(re.locs, append([]any{"body", "events", i}, loc...))
}

// conflicts reports whether breaking b would mask or undo a breakage
// already applied to re.
func conflicts(re *rawEvent, b breakage) bool {
	for _, x := range re.breaks {
		part, _, _ := strings.Cut(x, "\x00")
		if excludes(part, b.part) {
			return true
		}
	}
	return false
}

func writeEvents(b *bytes.Buffer, evs []*rawEvent) {
	for i, re := range evs {
		if i > 0 {
			b.WriteByte(',')
		}
		re.encode(b)
	}
}

// postRaw sends body to POST /publish with contentType and returns the
// status and the answer's body.
func postRaw(cl *client.Client, contentType string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cl.Base+"/publish", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := cl.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, answer, err
}

// badInput is the property; nested turns on invalid values placed deep in
// payloads of arbitrary shape (addNestedBad) and valid sentinels with such
// payloads, which must round-trip.
func badInput(e env.Env, nested bool) func(*rapid.T) {
	return func(t *rapid.T) {
		sp := newSpace("bad")
		p := newPublisher(e)
		before, err := settled(p.cl)
		must(t, err, "stats before")

		nreq := rapid.IntRange(1, 4).Draw(t, "requests")
		nextID := 0
		for r := range nreq {
			br := drawBadRequest(t, sp, r, &nextID, nested)
			logf(t, stepPrefix+"%s", br.desc)
			inv := p.rec.Invoke(0, history.FPublish, br.keys, "")
			status, answer, err := postRaw(p.cl, br.contentType, br.body)
			if err != nil {
				p.rec.Complete(inv, client.Classify(0, nil, err), time.Now(), 0, err.Error(), "")
				t.Fatalf("publish: %v", err)
			}
			p.rec.Complete(inv, client.Classify(status, nil, nil), time.Now(), status, shortBody(answer), "")
			if status != br.status {
				violated(t, "wrong status for an invalid request", "%s: got %d %s", br.desc, status, shortBody(answer))
			}
			if status == http.StatusUnprocessableEntity {
				checkDetail(t, br, answer)
			}
		}

		// Valid sentinels, then a drain: every earlier request has been
		// dealt with once the sentinels are. With nested payloads, each
		// sentinel's payload is drawn of arbitrary shape and must be stored
		// as sent (compared as JSON values).
		nsent := 1
		if nested {
			nsent = rapid.IntRange(1, 3).Draw(t, "sentinels")
		}
		sentinels := make([]ev, nsent)
		for j := range sentinels {
			k := history.Key{Topic: sp.topic(0), ID: fmt.Sprintf("%s-sentinel%d", sp.id, j)}
			sentinels[j] = newEvent(k, j, baseTime, "sentinel")
			if nested {
				var b bytes.Buffer
				drawPayload(t, "sentinel", baseTime.Format(time.RFC3339), j).root.encode(&b)
				sentinels[j].Payload = b.Bytes()
			}
		}
		logf(t, stepPrefix+"%d valid sentinel(s), payload of %d bytes first", nsent, len(sentinels[0].Payload))
		status, typ, err := p.publish(0, sentinels)
		if typ != history.OK {
			t.Fatalf("sentinels not acknowledged: %s: %v", outcome(status, typ), err)
		}
		rb, err := readBack(e, p.cl, sp, before)
		must(t, err, "read back")
		res := checker.Check(p.rec.Ops(), rb)
		logf(t, "check: %s", describe(res, sp))
		if !res.Valid {
			violated(t, "checker.Check invalid", "%s", strings.Join(res.Violations, "; "))
		}
		n := int64(nsent)
		d := rb.After.Sub(rb.Before)
		if d.Received != n || d.UniqueProcessed != n || d.DuplicatedDropped != 0 {
			violated(t, "invalid requests changed the stats", "received %d unique %d dropped %d, the sentinels alone are %d %d 0",
				d.Received, d.UniqueProcessed, d.DuplicatedDropped, n, n)
		}
		if rb.AuditAfter != nil && rb.AuditBefore != nil {
			if a := rb.AuditAfter.Sub(*rb.AuditBefore); a != (checker.Audit{Received: n, Queued: n, Processed: n}) {
				violated(t, "invalid requests changed the audit", "audit delta %+v, the sentinels alone are %d received, queued, processed", a, n)
			}
		}
		if len(rb.Stored) != nsent {
			violated(t, "invalid requests stored rows", "stored %s", sp.shortKeys(sortedKeys(rb.Stored), 10))
		}
		pg, err := getEvents(p.cl, sp.topic(0), 100, "")
		must(t, err, "GET /events")
		got := map[history.Key]storedEvent{}
		for _, se := range pg.Events {
			got[history.Key{Topic: se.Topic, ID: se.EventID}] = se
		}
		for _, s := range sentinels {
			se, ok := got[s.key()]
			switch {
			case !ok || rb.Stored[s.key()] != 1:
				violated(t, "invalid requests stored rows", "sentinel %s not stored once; stored %s", sp.short(s.key()), sp.shortKeys(sortedKeys(rb.Stored), 10))
			case !sameJSON(se.Payload, s.Payload):
				violated(t, "payload not stored as sent", "%s: sent %s, stored %s", sp.short(s.key()), s.Payload, se.Payload)
			}
		}
	}
}

// checkDetail checks a 422 answer: {"detail": [...]} naming every bad field.
func checkDetail(t *rapid.T, br badRequest, answer []byte) {
	t.Helper()
	var v struct {
		Detail []struct {
			Loc  []any  `json:"loc"`
			Msg  string `json:"msg"`
			Type string `json:"type"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(answer, &v); err != nil || len(v.Detail) == 0 {
		violated(t, "422 without a detail list", "%s: %s", br.desc, shortBody(answer))
	}
	got := map[string]bool{}
	for _, d := range v.Detail {
		b, _ := json.Marshal(d.Loc)
		got[string(b)] = true
		if d.Msg == "" || d.Type == "" {
			violated(t, "422 detail entry without msg or type", "%s: %s", br.desc, b)
		}
	}
	for _, loc := range br.locs {
		b, _ := json.Marshal(loc)
		if !got[string(b)] {
			violated(t, "422 detail does not name a bad field", "%s: no loc %s in %s", br.desc, b, shortBody(answer))
		}
	}
}

func shortBody(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}
