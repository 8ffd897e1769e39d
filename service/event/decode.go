package event

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// DecodeRequest parses and validates a whole /publish body. On success every
// event is valid.
//
// Request level (checked first, in this order, before any event is looked at):
//
//   - the body must be one syntactically valid JSON value (strict RFC 8259;
//     non-ASCII bytes outside strings, raw control characters inside strings
//     (including a raw NUL byte), trailing data, an empty body or a BOM are
//     syntax errors) -> *RequestError Malformed;
//   - it must be an object whose "events" member is an array -> otherwise
//     Malformed,
//     except "events": null -> *ValidationError loc ["body","events"],
//     type list_type. Other members are ignored (only syntax-checked). For
//     duplicate keys the last one wins, as with Python's json module;
//   - more than lim.MaxBatch elements -> *RequestError TooLarge (counted
//     during the syntax pass, without validating any event).
//
// Then every event is validated and the problems are reported in a
// *ValidationError: validation stops at MaxErrors problems, and the list
// holds as many as fit MaxErrorBytes plus a too_many_errors entry counting
// the others; each string of a location is cut to MaxLocBytes. See validateEvent for the
// per-event rules.
func DecodeRequest(body []byte, lim Limits) ([]Event, error) {
	return decodeRequest(body, lim, (*decoder).walk)
}

// A Decoder decodes and validates a POST /publish body as DecodeRequest
// does: DecodeRequest itself, or in a build with the plantedbugs tag a
// negative control's variant (service/planted).
type Decoder func(body []byte, lim Limits) ([]Event, error)

var _ Decoder = DecodeRequest

// A walkStep validates the payload value at d[i] at nesting level depth and
// returns the index just past it: decoder.walk, the step the validator
// takes for each value directly inside an array (the seam a planted bug of
// the validator plugs into).
type walkStep func(dc *decoder, i, depth int) int

// decodeRequest is DecodeRequest with elem as the step for the values
// directly inside payload arrays.
func decodeRequest(body []byte, lim Limits, elem walkStep) ([]Event, error) {
	lim = lim.normalized()
	shape, err := scanRequest(body)
	if err != nil {
		return nil, err
	}
	switch shape.events {
	case eventsMissing:
		return nil, &RequestError{Kind: Malformed, Msg: `request body must be a JSON object with an "events" array (missing "events" key)`}
	case eventsNull:
		return nil, &ValidationError{Errors: []FieldError{{Loc: []any{"body", "events"}, Msg: msgListType, Type: TypeListType}}}
	case eventsNotArray:
		return nil, &RequestError{Kind: Malformed, Msg: `request body must be a JSON object with an "events" array ("events" is not an array)`}
	}
	if shape.count > lim.MaxBatch {
		return nil, &RequestError{Kind: TooLarge, Msg: "too many events in one request: " +
			strconv.Itoa(shape.count) + " (limit " + strconv.Itoa(lim.MaxBatch) + ")"}
	}
	if shape.count == 0 {
		return []Event{}, nil
	}

	dc := decoderPool.Get().(*decoder)
	defer dc.release()
	dc.d, dc.lim, dc.plain, dc.elem = body, lim, !shape.special, elem
	dc.errs.MaxBytes = lim.MaxErrorBytes
	if cap(dc.offs) < shape.count {
		dc.offs = make([]evOffsets, shape.count)
	}
	offs := dc.offs[:shape.count]

	evs := make([]Event, shape.count)
	i := shape.arrStart + 1
	for idx := range evs {
		i = skipWS(body, i)
		i = dc.validateEvent(i, idx, &evs[idx], &offs[idx])
		if dc.full {
			break
		}
		i = skipWS(body, i)
		if body[i] == ',' {
			i++
		}
	}
	if dc.errs.Len() > 0 {
		// Errors hands the list over to the ValidationError.
		return nil, &ValidationError{Errors: dc.errs.Errors()}
	}

	// One allocation for all strings and one for all payloads.
	strs := string(dc.strs)
	pay := bytes.Clone(dc.pay)
	for k := range evs {
		o := &offs[k]
		ev := &evs[k]
		ev.EventID = strs[o.id.s:o.id.e]
		ev.Topic = strs[o.topic.s:o.topic.e]
		ev.Source = strs[o.source.s:o.source.e]
		ev.Payload = json.RawMessage(pay[o.payload.s:o.payload.e:o.payload.e])
	}
	return evs, nil
}

// ---- pass 1: request shape ----

const (
	eventsMissing = iota
	eventsNull
	eventsNotArray
	eventsArray
)

type requestShape struct {
	events   int  // eventsMissing, ...
	arrStart int  // offset of the '[' of the events array
	count    int  // number of elements
	special  bool // some string in the body has an escape or a non-ASCII byte
}

func malformedError(err error) *RequestError {
	return &RequestError{Kind: Malformed, Msg: err.Error()}
}

func scanRequest(d []byte) (shape requestShape, _ error) {
	special := &shape.special
	i := skipWS(d, 0)
	if i >= len(d) {
		return shape, &RequestError{Kind: Malformed, Msg: `request body is empty; expected a JSON object with an "events" array`}
	}
	if d[i] != '{' {
		end, err := skipValue(d, i, special)
		if err != nil {
			return shape, malformedError(err)
		}
		if end = skipWS(d, end); end != len(d) {
			return shape, malformedError(&syntaxError{off: end, msg: "unexpected data after the top-level JSON value"})
		}
		return shape, &RequestError{Kind: Malformed, Msg: `request body must be a JSON object with an "events" array (got a JSON ` + jsonKind(d[i]) + `)`}
	}
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == '}' {
		i++
	} else {
		for {
			i = skipWS(d, i)
			if i >= len(d) || d[i] != '"' {
				return shape, malformedError(synErr(d, i, " (expected a string object key)"))
			}
			ks := i
			var err error
			if i, err = scanString(d, i, special); err != nil {
				return shape, malformedError(err)
			}
			isEvents := keyIs(d[ks+1:i-1], "events")
			i = skipWS(d, i)
			if i >= len(d) || d[i] != ':' {
				return shape, malformedError(synErr(d, i, " (expected ':' after object key)"))
			}
			i = skipWS(d, i+1)
			vs := i
			switch {
			case isEvents && i < len(d) && d[i] == '[':
				n, end, err := scanArrayCount(d, i, special)
				if err != nil {
					return shape, malformedError(err)
				}
				shape.events, shape.arrStart, shape.count = eventsArray, vs, n
				i = end
			default:
				if i, err = skipValue(d, i, special); err != nil {
					return shape, malformedError(err)
				}
				if isEvents {
					shape.events, shape.arrStart, shape.count = eventsNotArray, 0, 0
					if d[vs] == 'n' {
						shape.events = eventsNull
					}
				}
			}
			i = skipWS(d, i)
			if i >= len(d) {
				return shape, malformedError(synErr(d, i, ""))
			}
			if d[i] == ',' {
				i++
				continue
			}
			if d[i] == '}' {
				i++
				break
			}
			return shape, malformedError(synErr(d, i, " (expected ',' or '}')"))
		}
	}
	if i = skipWS(d, i); i != len(d) {
		return shape, malformedError(&syntaxError{off: i, msg: "unexpected data after the top-level JSON value"})
	}
	return shape, nil
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// scanArrayCount validates the array at d[i] == '[' and counts its elements.
func scanArrayCount(d []byte, i int, special *bool) (n, end int, err error) {
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == ']' {
		return 0, i + 1, nil
	}
	for {
		if i, err = skipValue(d, i, special); err != nil {
			return n, i, err
		}
		n++
		i = skipWS(d, i)
		if i >= len(d) {
			return n, i, synErr(d, i, "")
		}
		switch d[i] {
		case ',':
			i++
		case ']':
			return n, i + 1, nil
		default:
			return n, i, synErr(d, i, " (expected ',' or ']')")
		}
	}
}

// keyIs reports whether the raw (still escaped) key equals name.
func keyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	if len(raw) > 6*len(name) {
		return false
	}
	var buf [64]byte
	return string(unescapeAppend(buf[:0], raw)) == name
}

// ---- pass 2: event validation ----

const (
	fEventID = iota
	fTopic
	fSource
	fTimestamp
	fPayload
	nFields
)

var fieldNames = [nFields]string{"event_id", "topic", "source", "timestamp", "payload"}

func matchField(raw []byte) int {
	if bytes.IndexByte(raw, '\\') >= 0 {
		if len(raw) > 60 {
			return -1
		}
		var buf [64]byte
		raw = unescapeAppend(buf[:0], raw)
	}
	switch string(raw) {
	case "event_id":
		return fEventID
	case "topic":
		return fTopic
	case "source":
		return fSource
	case "timestamp":
		return fTimestamp
	case "payload":
		return fPayload
	}
	return -1
}

const (
	pkOther = iota
	pkMessage
	pkTimestamp
)

func payloadKey(raw []byte) int {
	if bytes.IndexByte(raw, '\\') >= 0 {
		if len(raw) > 60 {
			return pkOther
		}
		var buf [64]byte
		raw = unescapeAppend(buf[:0], raw)
	}
	switch string(raw) {
	case "message":
		return pkMessage
	case "timestamp":
		return pkTimestamp
	}
	return pkOther
}

// span is a half-open byte range; s < 0 means absent.
type span struct{ s, e int }

var noSpan = span{-1, -1}

// evOffsets locate one event's strings in decoder.strs and its payload in
// decoder.pay.
type evOffsets struct{ id, topic, source, payload span }

// pathSeg is one step of the location inside a payload: an object key (the
// raw key token at d[ks:ke], quotes included) or, when ks < 0, an array index.
type pathSeg struct{ ks, ke, idx int }

type decoder struct {
	d    []byte
	lim  Limits
	errs ErrorList
	full bool // MaxErrors reached
	// plain: no string in the body has an escape or a non-ASCII byte, so
	// string checks and unescaping are no-ops.
	plain bool

	strs []byte      // decoded event_id/topic/source of all events
	pay  []byte      // compacted payloads of all events
	offs []evOffsets // per event offsets into strs/pay

	elem walkStep // validates each value directly inside a payload array

	// per-payload state
	evIdx    int
	path     []pathSeg
	sawWS    bool
	depthErr bool
	msg, ts  span
}

var decoderPool = sync.Pool{New: func() any { return new(decoder) }}

const maxPooledBuf = 1 << 20

func (dc *decoder) release() {
	dc.d = nil
	dc.errs = ErrorList{}
	dc.full = false
	dc.strs = dc.strs[:0]
	dc.pay = dc.pay[:0]
	dc.path = dc.path[:0]
	if cap(dc.strs) > maxPooledBuf {
		dc.strs = nil
	}
	if cap(dc.pay) > maxPooledBuf {
		dc.pay = nil
	}
	if cap(dc.offs) > 1<<14 {
		dc.offs = nil
	}
	decoderPool.Put(dc)
}

func (dc *decoder) addErr(loc []any, msg, typ string) {
	if !dc.errs.Add(loc, msg, typ) {
		dc.full = true
	}
}

func evLoc(idx int, rest ...any) []any {
	loc := make([]any, 0, 3+len(rest))
	loc = append(loc, "body", "events", idx)
	return append(loc, rest...)
}

var (
	msgTooShortEventID = "String should have at least " + strconv.Itoa(MinEventIDBytes) + " byte"
	msgTooLongEventID  = "String should have at most " + strconv.Itoa(MaxEventIDBytes) + " bytes"
	msgTooLongTopic    = "String should have at most " + strconv.Itoa(MaxTopicBytes) + " bytes"
	msgTooLongSource   = "String should have at most " + strconv.Itoa(MaxSourceBytes) + " bytes"
)

// validateEvent validates the event value at d[i] and returns the index just
// past it. Rules (field order = error order):
//
//   - the event must be a JSON object (else dict_type at ["body","events",i]);
//     unknown keys are ignored; for duplicate keys the last one wins;
//   - event_id, topic, source: JSON strings (string_type), valid UTF-8, no
//     \u0000, no lone surrogate escapes (string_unicode), decoded length in
//     bytes 1..1024 / 0..255 / 0..255 (string_too_short / string_too_long);
//   - timestamp: a JSON string (else datetime_type) accepted by
//     ParseTimestamp (else datetime_parsing);
//   - payload: see validatePayload.
//
// Every missing field is reported as missing ("Field required").
func (dc *decoder) validateEvent(i, idx int, ev *Event, off *evOffsets) int {
	d := dc.d
	if d[i] != '{' {
		dc.addErr(evLoc(idx), msgDictType, TypeDictType)
		return skipValueValid(d, i)
	}
	sp := [nFields]span{noSpan, noSpan, noSpan, noSpan, noSpan}
	i++
	for {
		i = skipWS(d, i)
		switch d[i] {
		case '}':
			i++
			dc.stringField(idx, fEventID, sp[fEventID], MinEventIDBytes, MaxEventIDBytes, msgTooLongEventID, &off.id)
			dc.stringField(idx, fTopic, sp[fTopic], 0, MaxTopicBytes, msgTooLongTopic, &off.topic)
			dc.stringField(idx, fSource, sp[fSource], 0, MaxSourceBytes, msgTooLongSource, &off.source)
			if ts, ok := dc.timestampField(sp[fTimestamp], false, idx); ok {
				ev.Timestamp = ts
			}
			dc.validatePayload(idx, sp[fPayload], &off.payload)
			return i
		case ',':
			i++
			continue
		}
		ke := skipStringValid(d, i)
		f := matchField(d[i+1 : ke-1])
		i = skipWS(d, skipWS(d, ke)+1) // past ':'
		ve := skipValueValid(d, i)
		if f >= 0 {
			sp[f] = span{i, ve}
		}
		i = ve
	}
}

func (dc *decoder) stringField(idx, f int, sp span, minLen, maxLen int, tooLong string, out *span) {
	if sp.s < 0 {
		dc.addErr(evLoc(idx, fieldNames[f]), msgMissing, TypeMissing)
		return
	}
	d := dc.d
	if d[sp.s] != '"' {
		dc.addErr(evLoc(idx, fieldNames[f]), msgStringType, TypeStringType)
		return
	}
	raw := d[sp.s+1 : sp.e-1]
	start := len(dc.strs)
	if dc.plain {
		dc.strs = append(dc.strs, raw...)
	} else {
		if p := checkString(raw); p != probNone {
			dc.addErr(evLoc(idx, fieldNames[f]), p.msg(), TypeStringUnicode)
			return
		}
		dc.strs = unescapeAppend(dc.strs, raw)
	}
	n := len(dc.strs) - start
	switch {
	case n < minLen:
		dc.addErr(evLoc(idx, fieldNames[f]), msgTooShortEventID, TypeStringTooShort)
	case n > maxLen:
		dc.addErr(evLoc(idx, fieldNames[f]), tooLong, TypeStringTooLong)
	default:
		*out = span{start, len(dc.strs)}
		return
	}
	dc.strs = dc.strs[:start]
}

// timestampField validates a timestamp value. inPayload selects the location
// (["body","events",idx,"payload","timestamp"]) and skips strings with
// unicode problems, which the payload walk has already reported.
func (dc *decoder) timestampField(sp span, inPayload bool, idx int) (time.Time, bool) {
	loc := func() []any {
		if inPayload {
			return evLoc(idx, "payload", "timestamp")
		}
		return evLoc(idx, "timestamp")
	}
	if sp.s < 0 {
		dc.addErr(loc(), msgMissing, TypeMissing)
		return time.Time{}, false
	}
	d := dc.d
	if d[sp.s] != '"' {
		dc.addErr(loc(), msgDatetimeType, TypeDatetimeType)
		return time.Time{}, false
	}
	raw := d[sp.s+1 : sp.e-1]
	var t time.Time
	var err error
	if dc.plain || bytes.IndexByte(raw, '\\') < 0 {
		if inPayload && !dc.plain && !utf8.Valid(raw) {
			return time.Time{}, false
		}
		t, err = parseTS(raw)
	} else {
		if inPayload && checkString(raw) != probNone {
			return time.Time{}, false
		}
		if len(raw) > 6*maxTimestampLen {
			err = errTSTooLong
		} else {
			var buf [6 * maxTimestampLen]byte
			t, err = parseTS(unescapeAppend(buf[:0], raw))
		}
	}
	if err != nil {
		dc.addErr(loc(), "Input should be a valid datetime, "+err.(*TimestampError).Reason, TypeDatetimeParsing)
		return time.Time{}, false
	}
	return t, true
}
