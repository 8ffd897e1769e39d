package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Requests refused as a whole get these exact answers: status, headers and
// body bytes (the event package says what is wrong, api.writeError which
// status that is).
func TestRefusalsAreExact(t *testing.T) {
	t.Parallel()
	_, hs, _ := newServer(t) // MaxBatch 100, MaxBodyBytes 1 MiB
	tooMany := `{"events":[` + strings.Repeat(`0,`, 100) + `0]}`
	cases := []struct {
		name, ctype, body string
		status            int
		want              string
	}{
		{"empty body", "application/json", ``, 400,
			`{"detail":"request body is empty; expected a JSON object with an \"events\" array"}`},
		{"no events key", "application/json", `{"event":[]}`, 400,
			`{"detail":"request body must be a JSON object with an \"events\" array (missing \"events\" key)"}`},
		{"too many events", "application/json", tooMany, 413,
			`{"detail":"too many events in one request: 101 (limit 100)"}`},
		{"body over MAX_BODY_BYTES", "application/json", strings.Repeat(" ", 1<<20+1), 413,
			`{"detail":"body of 1048577 bytes is over MAX_BODY_BYTES (1048576)"}`},
		{"not JSON", "text/plain", `{"events":[]}`, 415,
			`{"detail":"content type \"text/plain\" is not JSON: send application/json"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, hs.URL+"/publish", bytes.NewReader([]byte(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.ctype)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || string(b) != tc.want+"\n" {
				t.Errorf("answer %d %q, want %d %q", resp.StatusCode, b, tc.status, tc.want+"\n")
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, h := range []string{"Retry-After", "Chronicle-Outcome", "WWW-Authenticate"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("%s: %q on a refusal", h, v)
				}
			}
		})
	}
}
