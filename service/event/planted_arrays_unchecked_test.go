//go:build plantedbugs

package event

import (
	"errors"
	"testing"
)

// TestArraysUncheckedSkipsArrayElements: the planted validator accepts an
// invalid value directly inside an array, which DecodeRequest refuses
// naming its path, and still refuses one inside an object in an array.
func TestArraysUncheckedSkipsArrayElements(t *testing.T) {
	t.Parallel()
	const head = `{"events":[{"event_id":"e","topic":"t","source":"s","timestamp":"2024-01-01T00:00:00Z","payload":{"message":"m","timestamp":"2024-01-01T00:00:00Z","a":`
	for _, c := range []struct {
		value  string
		caught bool // still refused by the planted validator
	}{
		{`["ok", "\u0000"]`, false},
		{`[1, 1e200000]`, false},
		{`[[{"x": "\ud800"}]]`, true},
	} {
		body := []byte(head + c.value + `}}]}`)
		var ve *ValidationError
		if _, err := DecodeRequest(body, Limits{}); !errors.As(err, &ve) {
			t.Fatalf("DecodeRequest(%s) = %v, want a ValidationError", c.value, err)
		}
		_, err := DecodeArraysUnchecked(body, Limits{})
		if caught := errors.As(err, &ve); caught != c.caught {
			t.Errorf("DecodeArraysUnchecked(%s) = %v, want refused %v", c.value, err, c.caught)
		}
	}
}
