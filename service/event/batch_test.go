package event

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBatchRoundTrip(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	evs := []Event{
		{EventID: "e1", Topic: "orders", Source: "svc", Timestamp: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
			Payload: json.RawMessage(`{"message":"hi","timestamp":"2024-01-02T03:04:05Z"}`)},
		{EventID: "e\"2\\\n\t\r\x01\x1f</script>é😀\u2028", Topic: "", Source: "",
			Timestamp: time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC),
			Payload:   json.RawMessage(`{"message":"a\u0000b\"","x":[1,2.50,1e999999],"timestamp":"x"}`)},
		{EventID: strings.Repeat("x", 1024), Topic: strings.Repeat("t", 255), Source: strings.Repeat("s", 255),
			Timestamp: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Payload: json.RawMessage(`{}`)},
		{EventID: "max", Timestamp: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), Payload: json.RawMessage(`{"a":{}}`)},
		{EventID: "ns", Timestamp: time.Date(2000, 2, 29, 0, 0, 0, 1, time.UTC), Payload: json.RawMessage(`{"a" : 1 }`)},
		{EventID: "invalid utf8 kept \xff\xfe", Timestamp: time.Date(2000, 1, 1, 0, 0, 0, 100, time.UTC)},
	}
	data := MarshalBatch(evs)
	if !json.Valid(data) {
		t.Fatalf("not valid JSON: %s", data)
	}
	back, err := UnmarshalBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, evs) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", back, evs)
	}
	for i := range back {
		if back[i].Timestamp.Location() != time.UTC {
			t.Errorf("event %d not UTC", i)
		}
	}

	// Non-UTC input is written in UTC and compares Equal.
	in := []Event{{EventID: "z", Timestamp: time.Date(2024, 6, 1, 12, 0, 0, 500, cet), Payload: json.RawMessage(`{}`)}}
	data = AppendBatch([]byte("prefix"), in)
	if !strings.HasPrefix(string(data), "prefix[") || !strings.Contains(string(data), `"timestamp":"2024-06-01T11:00:00.0000005Z"`) {
		t.Fatalf("encoding: %s", data)
	}
	back, err = UnmarshalBatch(data[len("prefix"):])
	if err != nil {
		t.Fatal(err)
	}
	if !back[0].Timestamp.Equal(in[0].Timestamp) || back[0].Timestamp.Location() != time.UTC {
		t.Fatalf("timestamp %v", back[0].Timestamp)
	}

	// Empty batch.
	if got := string(MarshalBatch(nil)); got != "[]" {
		t.Fatalf("empty: %s", got)
	}
	back, err = UnmarshalBatch([]byte("[]"))
	if err != nil || len(back) != 0 {
		t.Fatalf("empty: %v %v", back, err)
	}
}

func TestBatchFormat(t *testing.T) {
	evs := []Event{{EventID: "a", Topic: "b", Source: "c", Timestamp: time.Date(2024, 1, 2, 3, 4, 5, 120000000, time.UTC),
		Payload: json.RawMessage(`{"message":"m","timestamp":"2024-01-02T03:04:05Z"}`)}}
	want := `[{"event_id":"a","topic":"b","source":"c","timestamp":"2024-01-02T03:04:05.12Z","payload":{"message":"m","timestamp":"2024-01-02T03:04:05Z"}}]`
	if got := string(MarshalBatch(evs)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// encoding/json reads it back identically.
	var std []Event
	if err := json.Unmarshal([]byte(want), &std); err != nil || !reflect.DeepEqual(std, evs) {
		t.Fatalf("encoding/json: %v %#v", err, std)
	}
}

func TestBatchFromDecodeRoundTrip(t *testing.T) {
	body := reqBody(
		defEv().json(),
		withID(`"\u00e9\ud83d\ude00\"\\\n"`),
		withPayload(`{ "message" : "x" , "timestamp" : "2024-01-02T03:04:05+05:00", "n": [1e5, {"k": null}] }`),
		withTS(`"2024-01-02 03:04:05.987654321-07:30"`),
	)
	evs, err := DecodeRequest(body, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalBatch(MarshalBatch(evs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, evs) {
		t.Fatalf("round trip mismatch")
	}
}

func TestUnmarshalBatchErrors(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `null`, `[1]`, `[{"event_id":1}]`, `[{"timestamp":5}]`, `[{"timestamp":"nope"}]`,
		`[{"payload":[]}]`, `[{"payload":"x"}]`, `[`, `[{]`, `[]x`, `[{"event_id":"a"}`, "[\"\x00\"]",
	} {
		if evs, err := UnmarshalBatch([]byte(in)); err == nil {
			t.Errorf("%q: accepted: %+v", in, evs)
		}
	}
	// Missing fields are tolerated (zero values), extra ones ignored.
	evs, err := UnmarshalBatch([]byte(` [ {"x":1}, {"event_id":"a","payload":null} ] `))
	if err != nil || len(evs) != 2 || evs[1].EventID != "a" || evs[1].Payload != nil {
		t.Fatalf("%+v %v", evs, err)
	}
}

func TestAppendBatchAllocs(t *testing.T) {
	evs, err := DecodeRequest(reqBody(defEv().json(), defEv().json()), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendBatch(buf[:0], evs) }); n != 0 {
		t.Fatalf("AppendBatch into a large enough buffer allocates %v times", n)
	}
}
