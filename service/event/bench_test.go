package event

import (
	"encoding/json"
	"strings"
	"testing"
)

func benchBody(n int) []byte {
	ev := `{"event_id":"3f2b8c1e-9a4d-4e21-b7c5-0d9e8f7a6b5c","topic":"orders.created","source":"checkout-service",` +
		`"timestamp":"2024-05-17T12:34:56.789Z","payload":{"message":"order 12345 created","timestamp":"2024-05-17T12:34:56.789Z",` +
		`"order_id":12345,"amount":99.95,"currency":"EUR","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"tags":["web","promo"]}}`
	return []byte(`{"events":[` + strings.TrimSuffix(strings.Repeat(ev+",", n), ",") + `]}`)
}

func BenchmarkDecodeRequest(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
	}{{"1-event", 1}, {"100-events", 100}} {
		body := benchBody(bc.n)
		lim := DefaultLimits()
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				evs, err := DecodeRequest(body, lim)
				if err != nil || len(evs) != bc.n {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendBatch(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
	}{{"1-event", 1}, {"100-events", 100}} {
		evs, err := DecodeRequest(benchBody(bc.n), DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = AppendBatch(buf[:0], evs)
			}
		})
	}
}

func BenchmarkUnmarshalBatch(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
	}{{"1-event", 1}, {"100-events", 100}} {
		evs, err := DecodeRequest(benchBody(bc.n), DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		data := MarshalBatch(evs)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := UnmarshalBatch(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeRequestLargePayload(b *testing.B) {
	body := reqBody(withPayload(sizedPayload(65536)))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeRequest(body, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReferenceJSONValid is a yardstick for the machine: encoding/json's
// syntax check alone over the same bodies.
func BenchmarkReferenceJSONValid(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
	}{{"1-event", 1}, {"100-events", 100}} {
		body := benchBody(bc.n)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !json.Valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
