package api

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWritePublishedIsWriteJSON: the acknowledgement built by hand is the
// bytes, status and Content-Type writeJSON gives for the same response.
func TestWritePublishedIsWriteJSON(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 7, 100, 12345, 1 << 40} {
		want := httptest.NewRecorder()
		writeJSON(want, http.StatusOK, publishResponse{Status: "success", Message: fmt.Sprintf("Published %d events", n), EventsCount: n})
		got := httptest.NewRecorder()
		writePublished(got, n)
		if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) ||
			got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || len(got.Header()) != len(want.Header()) {
			t.Errorf("n=%d: writePublished gave %d %v %q, writeJSON %d %v %q", n,
				got.Code, got.Header(), got.Body.Bytes(), want.Code, want.Header(), want.Body.Bytes())
		}
	}
}

// nullWriter is a ResponseWriter that keeps nothing (the benchmarks
// measure the building of the answer, not a recorder).
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) WriteHeader(int)             {}
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkPublishedAnswer compares the acknowledgement through
// encoding/json (writeJSON, as before) and by hand (writePublished).
func BenchmarkPublishedAnswer(b *testing.B) {
	b.Run("writeJSON", func(b *testing.B) {
		b.ReportAllocs()
		w := &nullWriter{h: http.Header{}}
		for b.Loop() {
			writeJSON(w, http.StatusOK, publishResponse{Status: "success", Message: fmt.Sprintf("Published %d events", 1), EventsCount: 1})
		}
	})
	b.Run("writePublished", func(b *testing.B) {
		b.ReportAllocs()
		w := &nullWriter{h: http.Header{}}
		for b.Loop() {
			writePublished(w, 1)
		}
	})
}
