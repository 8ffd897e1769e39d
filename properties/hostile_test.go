package properties

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// TestHostileInput: adversarial requests (issue 16) answer within bounds.
// Each check sends some of: a payload key of any length holding many NUL
// strings (many errors, long locations), numbers that PostgreSQL would
// print with up to 131,072 digits, deep nesting, escape-heavy text, pages
// of large events, many topics, NUL / invalid UTF-8 / oversized values in every query
// parameter of the GET endpoints, a missing or strange Content-Type, junk
// headers. For every request:
//
//   - the status is the expected one, and never 5xx;
//   - the answer is at most hostileRatio times the request plus
//     hostileBudget bytes (a 422 lists at most 16 KiB of errors); a read of
//     what an accepted request stored is bounded the same way by that
//     request's size, and an /events page by EVENTS_PAGE_BYTES plus one
//     event; /stats and /audit/summary list at most STATS_MAX_TOPICS
//     topics and count them all;
//   - a rejected request stores nothing: after a drain (up to a valid
//     sentinel sent last) the namespace holds exactly the accepted keys.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	e := useSharedEnv(t, "hostile", env.LocalOptions{Settings: hostileSettings})
	st := newRunStats(t)
	defer recordClean(t, propHostile, st)
	check(t, hostileChecks, st, hostileInput(e))
}

const propHostile = "hostile input"

// hostileControl runs the property on a planted bug's environment.
func hostileControl(e *env.Local) func(*rapid.T) { return hostileInput(e) }

var hostileChecks = budget{bounded: 20, full: 100}

// The bounds of the property.
const (
	// hostilePageBytes is EVENTS_PAGE_BYTES in its environment (the
	// setting's minimum, so that a few events fill a page).
	hostilePageBytes = 64 << 10
	// hostileRatio and hostileBudget: an answer is at most hostileRatio *
	// request bytes + hostileBudget (16 KiB of listed errors, their
	// envelope and the "...and N more" entry).
	hostileRatio  = 4
	hostileBudget = 20 << 10
	// hostilePageSlack is what a page may hold past EVENTS_PAGE_BYTES: the
	// event that crossed it is left for the next page, but a page holds at
	// least one event (a payload is at most 64 KiB).
	hostilePageSlack = 70 << 10
)

var hostileSettings = map[string]string{
	"WORKER_COUNT":      "2",
	"EVENTS_PAGE_BYTES": strconv.Itoa(hostilePageBytes),
	"STATS_MAX_TOPICS":  strconv.Itoa(hostileMaxTopics),
}

// hostileMaxTopics is STATS_MAX_TOPICS in the property's environment: the
// most topics /stats and /audit/summary may list.
const hostileMaxTopics = 20

// attack is one adversarial request and what it must get.
type attack struct {
	desc   string
	method string
	path   string // path and raw query
	header http.Header
	body   []byte
	want   int           // the expected status
	keys   []history.Key // the events sent (stored only when want is 200)
	// read, for an accepted request, is a GET path whose answer is bounded
	// by readBound bytes.
	read      string
	readBound int
	// topics: after this request, /stats and /audit/summary must list at
	// most hostileMaxTopics topics.
	topics bool
}

// size is about the request's size on the wire.
func (a *attack) size() int {
	n := len(a.method) + len(a.path) + len(a.body) + 100 // request line, Host, User-Agent, Content-Length
	for k, vs := range a.header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// hostileEvent is one event's JSON with extra payload members (raw JSON).
func hostileEvent(k history.Key, payloadExtra string) string {
	return `{"event_id":` + jsonString(k.ID) + `,"topic":` + jsonString(k.Topic) +
		`,"source":"hostile","timestamp":"2026-01-02T03:04:05Z","payload":{"message":"m","timestamp":"2026-01-02T03:04:05Z"` +
		payloadExtra + `}}`
}

func eventsBody(evs ...string) []byte {
	return []byte(`{"events":[` + strings.Join(evs, ",") + `]}`)
}

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

// hostileKinds draw one attack each; k numbers the attack (its topic), next
// numbers event ids.
var hostileKinds = []struct {
	name string
	draw func(t *rapid.T, sp space, k int, next *int) attack
}{
	{"long key, many errors", func(t *rapid.T, sp space, k int, next *int) attack {
		unit := rapid.SampledFrom([]string{"<", "a", "é", `\n`, `\u00e9`}).Draw(t, "key unit")
		keyLen := rapid.OneOf(rapid.IntRange(1, 200), rapid.IntRange(1, 60_000)).Draw(t, "key bytes")
		key := strings.Repeat(unit, max(1, keyLen/len(unit)))
		nuls := rapid.IntRange(1, max(1, (64_000-len(key))/9)).Draw(t, "NUL strings")
		key2 := history.Key{Topic: sp.topic(k), ID: sp.eventID(*next)}
		*next++
		extra := `,"` + key + `":[` + strings.TrimSuffix(strings.Repeat(`"\u0000",`, nuls), ",") + `]`
		return attack{desc: fmt.Sprintf("key of %d bytes (%q...) holding %d NUL strings", len(key), unit, nuls),
			method: http.MethodPost, path: "/publish", header: jsonHeader(),
			body: eventsBody(hostileEvent(key2, extra)), want: http.StatusUnprocessableEntity, keys: []history.Key{key2}}
	}},
	{"huge-printing numbers", func(t *rapid.T, sp space, k int, next *int) attack {
		var num string
		if rapid.Bool().Draw(t, "negative exponent") {
			num = "1e-" + strconv.Itoa(rapid.IntRange(41, 16383).Draw(t, "exponent"))
		} else {
			num = "1e" + strconv.Itoa(rapid.IntRange(40, 131071).Draw(t, "exponent"))
		}
		n := rapid.IntRange(1, 60_000/(len(num)+1)).Draw(t, "numbers")
		key := history.Key{Topic: sp.topic(k), ID: sp.eventID(*next)}
		*next++
		extra := `,"n":[` + strings.TrimSuffix(strings.Repeat(num+",", n), ",") + `]`
		return attack{desc: fmt.Sprintf("%d numbers %s", n, num), method: http.MethodPost, path: "/publish",
			header: jsonHeader(), body: eventsBody(hostileEvent(key, extra)), want: http.StatusUnprocessableEntity, keys: []history.Key{key}}
	}},
	{"deep nesting", func(t *rapid.T, sp space, k int, next *int) attack {
		d := rapid.IntRange(64, 30_000).Draw(t, "depth")
		key := history.Key{Topic: sp.topic(k), ID: sp.eventID(*next)}
		*next++
		extra := `,"n":` + strings.Repeat("[", d) + strings.Repeat("]", d)
		return attack{desc: fmt.Sprintf("payload nested %d deep", d+1), method: http.MethodPost, path: "/publish",
			header: jsonHeader(), body: eventsBody(hostileEvent(key, extra)), want: http.StatusUnprocessableEntity, keys: []history.Key{key}}
	}},
	{"escape-heavy text", func(t *rapid.T, sp space, k int, next *int) attack {
		unit := rapid.SampledFrom([]string{"<", ">", "&", `\"`, `\\`, `\u2028`, `\t`}).Draw(t, "text unit")
		n := rapid.IntRange(1, 60_000/len(unit)).Draw(t, "text units")
		key := history.Key{Topic: sp.topic(k), ID: sp.eventID(*next)}
		*next++
		a := attack{desc: fmt.Sprintf("valid event with %d x %q", n, unit), method: http.MethodPost, path: "/publish",
			header: jsonHeader(), body: eventsBody(hostileEvent(key, `,"text":"`+strings.Repeat(unit, n)+`"`)),
			want: http.StatusOK, keys: []history.Key{key}}
		a.read = "/events?topic=" + url.QueryEscape(key.Topic)
		a.readBound = hostileRatio*a.size() + hostileBudget
		return a
	}},
	{"page of large events", func(t *rapid.T, sp space, k int, next *int) attack {
		// At least 160 KB in all: a page bounded by rows alone would pass
		// EVENTS_PAGE_BYTES + hostilePageSlack.
		m := rapid.IntRange(4, 8).Draw(t, "large events")
		sz := rapid.IntRange(40_000, 60_000).Draw(t, "payload bytes")
		var evs []string
		var keys []history.Key
		for range m {
			key := history.Key{Topic: sp.topic(k), ID: sp.eventID(*next)}
			*next++
			keys = append(keys, key)
			evs = append(evs, hostileEvent(key, `,"blob":"`+strings.Repeat("x", sz)+`"`))
		}
		return attack{desc: fmt.Sprintf("%d events of %d bytes in one topic", m, sz), method: http.MethodPost, path: "/publish",
			header: jsonHeader(), body: eventsBody(evs...), want: http.StatusOK, keys: keys,
			read: "/events?limit=10000&topic=" + url.QueryEscape(keys[0].Topic), readBound: hostilePageBytes + hostilePageSlack}
	}},
	{"many topics", func(t *rapid.T, sp space, k int, next *int) attack {
		n := rapid.IntRange(hostileMaxTopics+1, 200).Draw(t, "topics")
		var evs []string
		var keys []history.Key
		for i := range n {
			key := history.Key{Topic: sp.topic(1000 + i), ID: sp.eventID(*next)}
			*next++
			keys = append(keys, key)
			evs = append(evs, hostileEvent(key, ""))
		}
		return attack{desc: fmt.Sprintf("%d events on as many topics", n), method: http.MethodPost, path: "/publish",
			header: jsonHeader(), body: eventsBody(evs...), want: http.StatusOK, keys: keys, topics: true}
	}},
	{"bad query parameter", func(t *rapid.T, _ space, _ int, _ *int) attack {
		path := rapid.SampledFrom([]string{"/events", "/audit", "/stats", "/audit/summary"}).Draw(t, "endpoint")
		param := rapid.SampledFrom([]string{"topic", "event_id", "cursor", "action", "from", "to", "limit", "x"}).Draw(t, "parameter")
		bad := rapid.SampledFrom([]string{"%00", "a%00b", "%ff", "%c3%28", "%ed%a0%80", "oversized", "cursor holding NUL"}).Draw(t, "value")
		var v string
		switch bad {
		case "oversized":
			v = strings.Repeat("a", rapid.IntRange(11_000, 20_000).Draw(t, "bytes")) // over every parameter's limit
		case "cursor holding NUL": // well formed base64 and JSON, as a page's cursor is
			v = base64.RawURLEncoding.EncodeToString([]byte(`[1700000000000000,"t\u0000","e"]`))
			if param != "cursor" || path != "/events" { // only /events reads a cursor
				v = "t%00"
			}
		default:
			v = bad
		}
		return attack{desc: fmt.Sprintf("GET %s?%s=<%s>", path, param, bad), method: http.MethodGet,
			path: path + "?" + param + "=" + v, want: http.StatusUnprocessableEntity}
	}},
	{"content type", func(t *rapid.T, sp space, k int, next *int) attack {
		ct := rapid.SampledFrom([]string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
			"application/json\xff", "application/xml"}).Draw(t, "content type")
		key := history.Key{Topic: sp.topic(k), ID: sp.eventID(*next)}
		*next++
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		return attack{desc: fmt.Sprintf("valid event with Content-Type %q", ct), method: http.MethodPost, path: "/publish",
			header: h, body: eventsBody(hostileEvent(key, "")), want: http.StatusUnsupportedMediaType, keys: []history.Key{key}}
	}},
	{"junk headers", func(t *rapid.T, sp space, k int, next *int) attack {
		junk := rapid.SampledFrom([]string{"\xff\xfe", "\xc3\x28", "<script>", strings.Repeat("\x80", 4000)}).Draw(t, "junk")
		key := history.Key{Topic: sp.topic(k), ID: sp.eventID(*next)}
		*next++
		h := jsonHeader()
		h.Set("X-Junk", junk)
		h.Set("Accept", junk)
		h.Set("Authorization", "Bearer "+junk) // no API_TOKEN here: ignored
		return attack{desc: fmt.Sprintf("valid event with junk headers %q", junk[:min(len(junk), 8)]), method: http.MethodPost,
			path: "/publish", header: h, body: eventsBody(hostileEvent(key, "")), want: http.StatusOK, keys: []history.Key{key}}
	}},
}

// checkTopicsListed checks, once the queue is drained, that /stats and
// /audit/summary list at most hostileMaxTopics topics (and count them all).
func checkTopicsListed(t *rapid.T, cl *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	_, _, err := cl.WaitDrained(ctx)
	must(t, err, "drain before /stats")
	var st struct {
		Topics      []string `json:"topics"`
		TopicsCount int      `json:"topics_count"`
	}
	must(t, getJSON(cl, "/stats", nil, &st), "GET /stats")
	var sum struct {
		ByTopic     map[string]any `json:"by_topic"`
		TopicsCount int            `json:"topics_count"`
	}
	must(t, getJSON(cl, "/audit/summary", nil, &sum), "GET /audit/summary")
	logf(t, "  /stats lists %d of %d topics, /audit/summary %d of %d", len(st.Topics), st.TopicsCount, len(sum.ByTopic), sum.TopicsCount)
	if len(st.Topics) > hostileMaxTopics || len(sum.ByTopic) > hostileMaxTopics {
		violated(t, "too many topics listed", "/stats lists %d, /audit/summary %d, STATS_MAX_TOPICS %d",
			len(st.Topics), len(sum.ByTopic), hostileMaxTopics)
	}
	if st.TopicsCount <= hostileMaxTopics || sum.TopicsCount < st.TopicsCount {
		violated(t, "topics not counted", "/stats topics_count %d, /audit/summary topics_count %d", st.TopicsCount, sum.TopicsCount)
	}
}

// send sends a request and returns the status and the answer's size (read
// in full, kept up to 1 KiB for the log).
func send(cl *client.Client, method, path string, header http.Header, body []byte) (int, int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, cl.Base+path, bytes.NewReader(body))
	if err != nil {
		return 0, 0, "", err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := cl.HTTP.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	var head bytes.Buffer
	n, err := io.Copy(&head, io.LimitReader(resp.Body, 1<<10))
	if err == nil {
		var rest int64
		rest, err = io.Copy(io.Discard, resp.Body)
		n += rest
	}
	return resp.StatusCode, int(n), head.String(), err
}

func hostileInput(e env.Env) func(*rapid.T) {
	return func(t *rapid.T) {
		sp := newSpace("hostile")
		p := newPublisher(e)
		before, err := settled(p.cl)
		must(t, err, "stats before")

		next := 0
		want := map[history.Key]bool{}
		for k, kind := range hostileKinds {
			if !rapid.Bool().Draw(t, kind.name) {
				continue
			}
			a := kind.draw(t, sp, k, &next)
			status, n, head, err := send(p.cl, a.method, a.path, a.header, a.body)
			must(t, err, a.desc)
			logf(t, "%s: %d, %d bytes for %d", a.desc, status, n, a.size())
			if status >= 500 {
				violated(t, "a hostile request got 5xx", "%s: %d %.300s", a.desc, status, head)
			}
			if status != a.want {
				violated(t, "wrong status for a hostile request", "%s: got %d, want %d: %.300s", a.desc, status, a.want, head)
			}
			if bound := hostileRatio*a.size() + hostileBudget; n > bound {
				violated(t, "answer over the bound", "%s: %d bytes for a request of %d (bound %d)", a.desc, n, a.size(), bound)
			}
			if status == http.StatusOK {
				for _, key := range a.keys {
					want[key] = true
				}
			}
			if a.topics && status == http.StatusOK {
				checkTopicsListed(t, p.cl)
			}
			if a.read == "" || status != http.StatusOK {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			_, _, err = p.cl.WaitDrained(ctx)
			cancel()
			must(t, err, "drain before the read")
			rs, rn, rhead, err := send(p.cl, http.MethodGet, a.read, nil, nil)
			must(t, err, "read back")
			logf(t, "  GET %.80s: %d, %d bytes (bound %d)", a.read, rs, rn, a.readBound)
			if rs != http.StatusOK {
				violated(t, "read of an accepted request failed", "GET %.80s: %d %.300s", a.read, rs, rhead)
			}
			if rn > a.readBound {
				violated(t, "read over the bound", "GET %.80s: %d bytes, bound %d", a.read, rn, a.readBound)
			}
		}

		// A valid sentinel, then a drain: every request before it has been
		// dealt with once it is.
		sentinel := history.Key{Topic: sp.topic(len(hostileKinds)), ID: sp.id + "-sentinel"}
		status, typ, err := p.publish(0, []ev{newEvent(sentinel, 1, baseTime, "sentinel")})
		if typ != history.OK {
			t.Fatalf("sentinel not acknowledged: %s: %v", outcome(status, typ), err)
		}
		want[sentinel] = true
		rb, err := readBack(e, p.cl, sp, before)
		must(t, err, "read back")
		for key := range rb.Stored {
			if !want[key] {
				violated(t, "a rejected request stored an event", "stored %s", sp.short(key))
			}
		}
		for key := range want {
			if rb.Stored[key] != 1 {
				violated(t, "an accepted event is not stored once", "%s stored %d times", sp.short(key), rb.Stored[key])
			}
		}
	}
}
