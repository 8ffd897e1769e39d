package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/chronicleweaver/chronicleweaver/service/event"
)

// Query parameters are checked before anything reaches PostgreSQL, which
// refuses NUL and invalid UTF-8 in text parameters with an error that would
// otherwise be reported as an outage (503). Every parameter of every GET
// request, known or not, must be valid URL encoding, valid UTF-8 without
// NUL, and no longer than its limit; otherwise the answer is 422 naming the
// parameter, like body errors.

// queryLimits are the longest values, in bytes, of the known parameters;
// any other parameter may hold maxOtherQueryValue bytes.
var queryLimits = map[string]int{
	"topic":    event.MaxTopicBytes,
	"event_id": event.MaxEventIDBytes,
	"action":   16,
	"from":     64,
	"to":       64,
	"limit":    16,
	// A cursor holds a topic and an event_id as JSON (up to 6 bytes per
	// byte for escaped control characters), in base64.
	"cursor": 4 * (32 + 6*(event.MaxTopicBytes+event.MaxEventIDBytes)) / 3,
}

const (
	maxOtherQueryValue = 1024
	maxQueryName       = 64
)

// CheckQuery checks every query parameter as described above; the error is
// a 422 naming the first bad parameter (in name order).
func CheckQuery(rawQuery string) error {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return badQuery("", "Query string should be valid URL encoding", "query_encoding")
	}
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if why := badText(k, maxQueryName); why != "" {
			return badQuery(k, "Query parameter name "+why, "string_unicode")
		}
		limit, ok := queryLimits[k]
		if !ok {
			limit = maxOtherQueryValue
		}
		for _, v := range vals[k] {
			if why := badText(v, limit); why != "" {
				typ := "string_unicode"
				if len(v) > limit {
					typ = "string_too_long"
				}
				return badQuery(k, "Query parameter "+why, typ)
			}
		}
	}
	return nil
}

// badText says what is wrong with s as a query name or value, or "".
func badText(s string, limit int) string {
	switch {
	case len(s) > limit:
		return fmt.Sprintf("should have at most %d bytes", limit)
	case !utf8.ValidString(s):
		return "should be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "should not contain the NUL character"
	}
	return ""
}

// checkedQuery refuses a request whose query string fails s.checkQuery.
func (s *Server) checkedQuery(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkQuery(r.URL.RawQuery); err != nil {
			s.writeError(w, err)
			return
		}
		next(w, r)
	}
}
