package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// fuzzLimits are small so that the fuzzer reaches the limit boundaries.
var fuzzLimits = Limits{MaxBatch: 4, MaxPayloadBytes: 200, MaxDepth: 4}

func FuzzDecodeRequest(f *testing.F) {
	for _, tc := range decodeCases() {
		if len(tc.body) <= 4096 {
			f.Add(tc.body)
		}
	}
	f.Add([]byte(`{"events":[{"event_id":"a","topic":"","source":"","timestamp":"2024-01-02T03:04:05Z","payload":{"message":"","timestamp":"2024-01-02 03:04"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, lim := range []Limits{DefaultLimits(), fuzzLimits} {
			orig := string(body)
			evs, err := DecodeRequest(body, lim)
			if string(body) != orig {
				t.Fatalf("DecodeRequest modified its input")
			}
			if err != nil {
				if evs != nil {
					t.Fatalf("events and error")
				}
				var ve *ValidationError
				var re *RequestError
				if !json.Valid(body) && !stdTooDeep(body) && !(errors.As(err, &re) && re.Kind == Malformed) {
					t.Fatalf("invalid JSON not reported as malformed: %v", err)
				}
				switch {
				case errors.As(err, &ve):
					if len(ve.Errors) == 0 || len(ve.Errors) > MaxErrors {
						t.Fatalf("%d errors", len(ve.Errors))
					}
					for _, fe := range ve.Errors {
						if len(fe.Loc) < 2 || fe.Loc[0] != "body" || fe.Loc[1] != "events" || fe.Msg == "" || fe.Type == "" {
							t.Fatalf("bad field error %#v", fe)
						}
					}
				case errors.As(err, &re):
					if re.Kind != Malformed && re.Kind != TooLarge {
						t.Fatalf("kind %v", re.Kind)
					}
					if re.Kind == Malformed && isValidJSONObjectWithEventsArray(body) {
						t.Fatalf("malformed: a valid JSON object with an events array: %s", re.Msg)
					}
				default:
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				continue
			}
			checkEventsInvariants(t, body, lim, evs)
		}
	})
}

// isValidJSONObjectWithEventsArray is an independent (encoding/json) check of
// the request shape.
func isValidJSONObjectWithEventsArray(body []byte) bool {
	if !json.Valid(body) {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	ev, ok := top["events"]
	return ok && len(ev) > 0 && ev[0] == '['
}

func FuzzUnmarshalBatch(f *testing.F) {
	for _, tc := range decodeCases() {
		if tc.want != wantOK || len(tc.body) > 4096 {
			continue
		}
		if evs, err := DecodeRequest(tc.body, tc.lim); err == nil {
			f.Add(MarshalBatch(evs))
		}
	}
	f.Add([]byte(`[{"x":1},{"event_id":"a\u00e9\ud800","payload":null,"timestamp":"2024-01-02 03:04:05.5+01:00"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := UnmarshalBatch(data)
		if err != nil {
			return
		}
		if !json.Valid(data) && !stdTooDeep(data) {
			t.Fatalf("accepted invalid JSON")
		}
		back, err := UnmarshalBatch(MarshalBatch(evs))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(back, evs) {
			t.Fatalf("round trip mismatch:\n%#v\n%#v", back, evs)
		}
	})
}
