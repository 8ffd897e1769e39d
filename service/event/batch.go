package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// Batch encoding (one Redis stream entry holds one request's events):
//
//	[{"event_id":"…","topic":"…","source":"…","timestamp":"2006-01-02T15:04:05.999999999Z","payload":{…}},…]
//
// Compact JSON; strings escape only '"', '\\' and control characters (other
// bytes are copied verbatim); the timestamp is RFC 3339 with up to 9
// fraction digits (trailing zeros trimmed) in UTC; the payload is written
// as is (a nil/empty payload is written as null and read back as nil).

// AppendBatch appends the batch encoding of evs to dst.
func AppendBatch(dst []byte, evs []Event) []byte {
	n := 2
	for k := range evs {
		e := &evs[k]
		n += len(`{"event_id":"","topic":"","source":"","timestamp":"2006-01-02T15:04:05.999999999Z","payload":},`) +
			len(e.EventID) + len(e.Topic) + len(e.Source) + len(e.Payload) + 4
	}
	dst = slices.Grow(dst, n)
	dst = append(dst, '[')
	for k := range evs {
		e := &evs[k]
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"event_id":`...)
		dst = appendJSONString(dst, e.EventID)
		dst = append(dst, `,"topic":`...)
		dst = appendJSONString(dst, e.Topic)
		dst = append(dst, `,"source":`...)
		dst = appendJSONString(dst, e.Source)
		dst = append(dst, `,"timestamp":"`...)
		dst = e.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, `","payload":`...)
		if len(e.Payload) == 0 {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, e.Payload...)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// MarshalBatch returns the batch encoding of evs.
func MarshalBatch(evs []Event) []byte { return AppendBatch(nil, evs) }

var (
	errBatchNotArray = errors.New("event: batch is not a JSON array")
	errBatchElem     = errors.New("event: batch element is not a JSON object")
	errBatchString   = errors.New("event: batch event_id/topic/source is not a JSON string")
	errBatchTS       = errors.New("event: batch timestamp is not a JSON string")
	errBatchPayload  = errors.New("event: batch payload is not a JSON object or null")
)

// UnmarshalBatch decodes a batch produced by AppendBatch. It checks JSON
// syntax and field types but does not re-apply the request limits (the
// worker may run with different limits than the API); missing fields are
// left zero. Payloads are returned verbatim. The returned events share two
// backing allocations (one for strings, one for payloads).
func UnmarshalBatch(data []byte) ([]Event, error) {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '[' {
		if i < len(data) {
			var special bool
			if _, err := skipValue(data, i, &special); err != nil {
				return nil, errors.New("event: batch: " + err.Error())
			}
		}
		return nil, errBatchNotArray
	}
	var special bool
	count, end, err := scanArrayCount(data, i, &special)
	if err != nil {
		return nil, errors.New("event: batch: " + err.Error())
	}
	if j := skipWS(data, end); j != len(data) {
		return nil, errors.New("event: batch: " + (&syntaxError{off: j, msg: "unexpected data after the JSON value"}).Error())
	}
	evs := make([]Event, count)
	offs := make([]evOffsets, count)
	var strs []byte
	pay := make([]byte, 0, len(data))
	i = skipWS(data, i+1)
	for k := 0; k < count; k++ {
		if data[i] != '{' {
			return nil, errBatchElem
		}
		o := &offs[k]
		o.payload = noSpan
		i++
		for {
			i = skipWS(data, i)
			if data[i] == '}' {
				i++
				break
			}
			if data[i] == ',' {
				i++
				continue
			}
			ke := skipStringValid(data, i)
			f := matchField(data[i+1 : ke-1])
			i = skipWS(data, skipWS(data, ke)+1)
			ve := skipValueValid(data, i)
			switch f {
			case fEventID, fTopic, fSource:
				if data[i] != '"' {
					return nil, errBatchString
				}
				start := len(strs)
				strs = unescapeAppend(strs, data[i+1:ve-1])
				s := span{start, len(strs)}
				switch f {
				case fEventID:
					o.id = s
				case fTopic:
					o.topic = s
				default:
					o.source = s
				}
			case fTimestamp:
				if data[i] != '"' {
					return nil, errBatchTS
				}
				raw := data[i+1 : ve-1]
				if bytes.IndexByte(raw, '\\') >= 0 {
					raw = unescapeAppend(nil, raw)
				}
				t, err := parseTS(raw)
				if err != nil {
					return nil, errors.New("event: batch: " + err.Error())
				}
				evs[k].Timestamp = t
			case fPayload:
				switch data[i] {
				case '{':
					start := len(pay)
					pay = append(pay, data[i:ve]...)
					o.payload = span{start, len(pay)}
				case 'n':
					o.payload = noSpan
				default:
					return nil, errBatchPayload
				}
			}
			i = ve
		}
		i = skipWS(data, i)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
		}
	}
	s := string(strs)
	for k := range evs {
		o := &offs[k]
		ev := &evs[k]
		ev.EventID = s[o.id.s:o.id.e]
		ev.Topic = s[o.topic.s:o.topic.e]
		ev.Source = s[o.source.s:o.source.e]
		if o.payload.s >= 0 {
			ev.Payload = json.RawMessage(pay[o.payload.s:o.payload.e:o.payload.e])
		}
	}
	return evs, nil
}
