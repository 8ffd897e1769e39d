// Package attack is the hostile client of the harness (issue 16): beside
// the load, it sends the worst of the adversarial requests the edge must
// bound, reads with bad query input, heavy reads of seeded data, and holds
// connections whose answer it never reads. Like the nemesis it stays
// outside the system under test; it records what every kind of attack
// sent and got (results.AttackKind), so that a run can demand that the
// attacks were really sent and answered as they must be: an attack that
// silently does nothing must not pass.
//
// Requests that must be refused are refused before anything is queued, so
// the checker of the load's history is unaffected; the valid data the
// heavy reads need (many topics, events of escape-heavy payloads) is
// seeded by Seed before the run's stats are first read.
package attack

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
)

// Bounds of an answer: a refusal is at most Ratio times its request plus
// Budget bytes (16 KiB of listed errors, their envelope and the "...and N
// more" entry); a page at most EVENTS_PAGE_BYTES plus PageSlack (the page
// holds at least one event, at most 64 KiB); /stats and /audit/summary at
// most StatsBound.
const (
	Ratio      = 4
	Budget     = 20 << 10
	PageSlack  = 70 << 10
	StatsBound = 512 << 10
)

// Config is an attack on one service.
type Config struct {
	Target string // base URL
	Token  string // API token; empty: none
	// Namespace prefixes the seeded topics (apart from the load's).
	Namespace string
	// Rate is hostile requests per second, the kinds in turn.
	Rate float64
	// Holders is how many connections never read their answer, and as
	// many never finish their request.
	Holders int
	// PageBytes is the service's EVENTS_PAGE_BYTES (the page bound).
	PageBytes int
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
}

// Request is one hostile request.
type Request struct {
	Method, Path string // path with raw query
	Header       http.Header
	Body         []byte
}

// Size is about the request's size on the wire.
func (r Request) Size() int {
	n := len(r.Method) + len(r.Path) + len(r.Body) + 100 // request line, Host, User-Agent, Content-Length
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// Kind is one kind of attack: how its i-th request is built, the statuses
// it must get, and the bound of its answer for a request of a given size.
type Kind struct {
	Name  string
	Want  []int
	Build func(i int) Request
	Bound func(reqBytes int) int
}

func refusalBound(n int) int { return Ratio*n + Budget }

// Event is one valid event's JSON with extra payload members (raw JSON).
func Event(topic, id, payloadExtra string) string {
	return `{"event_id":` + strconv.Quote(id) + `,"topic":` + strconv.Quote(topic) +
		`,"source":"hostile","timestamp":"2026-01-02T03:04:05Z","payload":{"message":"m","timestamp":"2026-01-02T03:04:05Z"` +
		payloadExtra + `}}`
}

// Body is a publish body of events (raw JSON each).
func Body(evs ...string) []byte { return []byte(`{"events":[` + strings.Join(evs, ",") + `]}`) }

// JSONHeader is a publish's header.
func JSONHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

// LongKeyNULs is a publish whose payload has a key of keyLen copies of
// unit holding nuls NUL strings: each an error whose location repeats the
// key (issue 16, case 1: 55,000 '<' and 1,000 NULs in 64 KB).
func LongKeyNULs(topic, id, unit string, keyLen, nuls int) Request {
	key := strings.Repeat(unit, max(1, keyLen/len(unit)))
	extra := `,"` + key + `":[` + strings.TrimSuffix(strings.Repeat(`"\u0000",`, nuls), ",") + `]`
	return Request{Method: http.MethodPost, Path: "/publish", Header: JSONHeader(), Body: Body(Event(topic, id, extra))}
}

// Numbers is a publish whose payload holds n copies of num (e.g.
// "1e131071", which PostgreSQL prints with 131,072 digits).
func Numbers(topic, id, num string, n int) Request {
	extra := `,"n":[` + strings.TrimSuffix(strings.Repeat(num+",", n), ",") + `]`
	return Request{Method: http.MethodPost, Path: "/publish", Header: JSONHeader(), Body: Body(Event(topic, id, extra))}
}

// Nested is a publish whose payload is nested depth arrays deep.
func Nested(topic, id string, depth int) Request {
	extra := `,"n":` + strings.Repeat("[", depth) + strings.Repeat("]", depth)
	return Request{Method: http.MethodPost, Path: "/publish", Header: JSONHeader(), Body: Body(Event(topic, id, extra))}
}

// Escapes is a valid event whose payload text is n copies of unit (a
// character an HTML-escaping encoder writes 6-fold, or an escape).
func Escapes(topic, id, unit string, n int) string {
	return Event(topic, id, `,"text":"`+strings.Repeat(unit, n)+`"`)
}

// ManyTopics is n valid events, each on its own topic (prefix-N), with
// extra payload members.
func ManyTopics(prefix, id string, first, n int, extra string) []string {
	evs := make([]string, n)
	for i := range n {
		evs[i] = Event(prefix+"-"+strconv.Itoa(first+i), id, extra)
	}
	return evs
}

// BadQueries are GETs with bad query input: NUL, invalid UTF-8, oversized
// values and a well-formed cursor holding a NUL, on every read endpoint.
func BadQueries() []string {
	long := strings.Repeat("a", 20_000)
	cursor := base64.RawURLEncoding.EncodeToString([]byte(`[1700000000000000,"t\u0000","e"]`))
	return []string{
		"/events?topic=%00", "/events?topic=%ff%fe", "/events?cursor=" + cursor, "/events?limit=%00", "/events?topic=" + long,
		"/audit?event_id=%c3%28", "/audit?topic=" + long, "/audit?from=%00", "/audit?action=%ed%a0%80",
		"/stats?x=%00", "/audit/summary?x=%ff",
	}
}

// Kinds are the attacks Run sends, in turn. Every refusal names nothing
// internal and is bounded by its request's size; reads of seeded data are
// bounded by the page and stats bounds (a read may also be refused with
// 503 when READ_CONCURRENCY reads are already running).
func Kinds(c Config) []Kind {
	ns := c.Namespace
	id := func(i int) string { return "a" + strconv.Itoa(i) }
	unprocessable := []int{http.StatusUnprocessableEntity}
	reads := []int{http.StatusOK, http.StatusServiceUnavailable}
	bad := BadQueries()
	return []Kind{
		{"long key, 1,000 NULs", unprocessable, func(i int) Request {
			return LongKeyNULs(ns+"-x", id(i), "<", 55_000, 1_000)
		}, refusalBound},
		{"4,000 numbers 1e131071", unprocessable, func(i int) Request {
			return Numbers(ns+"-x", id(i), "1e131071", 4_000)
		}, refusalBound},
		{"escape-heavy key, NULs", unprocessable, func(i int) Request {
			return LongKeyNULs(ns+"-x", id(i), `\"<&\u2028`, 40_000, 2_000)
		}, refusalBound},
		{"nested 30,000 deep", unprocessable, func(i int) Request {
			return Nested(ns+"-x", id(i), 30_000)
		}, refusalBound},
		{"1,000 topics, each invalid", unprocessable, func(i int) Request {
			evs := ManyTopics(ns+"-bad", id(i), 0, 1_000, `,"v":"\u0000"`)
			return Request{Method: http.MethodPost, Path: "/publish", Header: JSONHeader(), Body: Body(evs...)}
		}, refusalBound},
		{"text/plain publish", []int{http.StatusUnsupportedMediaType}, func(i int) Request {
			return Request{Method: http.MethodPost, Path: "/publish", Header: http.Header{"Content-Type": {"text/plain"}},
				Body: Body(Event(ns+"-x", id(i), ""))}
		}, refusalBound},
		{"bad query input", unprocessable, func(i int) Request {
			return Request{Method: http.MethodGet, Path: bad[i%len(bad)]}
		}, refusalBound},
		{"page of escape-heavy events", reads, func(int) Request {
			return Request{Method: http.MethodGet, Path: "/events?limit=10000&topic=" + url.QueryEscape(PageTopic(ns))}
		}, func(int) int { return c.PageBytes + PageSlack }},
		{"stats of many topics", reads, func(i int) Request {
			return Request{Method: http.MethodGet, Path: []string{"/stats", "/audit/summary"}[i%2]}
		}, func(int) int { return StatsBound }},
	}
}

// PageTopic is the seeded topic of escape-heavy events.
func PageTopic(ns string) string { return ns + "-page" }

// Seed stores what the heavy reads read: topics distinct topics, and
// pageEvents events of 30,000 '<' each (6-fold if an encoder escaped them)
// in PageTopic. It returns once every request is acknowledged.
func Seed(ctx context.Context, c Config, topics, pageEvents int) error {
	hc := &http.Client{Transport: client.NewTransport(), Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	for first := 0; first < topics; first += 1000 {
		evs := ManyTopics(c.Namespace+"-topic", "seed", first, min(1000, topics-first), "")
		if err := seedOne(ctx, hc, c, Body(evs...)); err != nil {
			return fmt.Errorf("attack: seed topics %d..: %w", first, err)
		}
	}
	for first := 0; first < pageEvents; first += 20 {
		var evs []string
		for i := first; i < min(first+20, pageEvents); i++ {
			evs = append(evs, Escapes(PageTopic(c.Namespace), "p"+strconv.Itoa(i), "<", 30_000))
		}
		if err := seedOne(ctx, hc, c, Body(evs...)); err != nil {
			return fmt.Errorf("attack: seed page events %d..: %w", first, err)
		}
	}
	return nil
}

func seedOne(ctx context.Context, hc *http.Client, c Config, body []byte) error {
	r := Request{Method: http.MethodPost, Path: "/publish", Header: JSONHeader(), Body: body}
	status, _, head, err := send(ctx, hc, c, r)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", status, head)
	}
	return nil
}

// send sends r and reads the whole answer: status, size, its first 300
// bytes.
func send(ctx context.Context, hc *http.Client, c Config, r Request) (int, int64, string, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, strings.TrimRight(c.Target, "/")+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		return 0, 0, "", err
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	var head bytes.Buffer
	n, err := io.Copy(&head, io.LimitReader(resp.Body, 300))
	if err == nil {
		var rest int64
		rest, err = io.Copy(io.Discard, resp.Body)
		n += rest
	}
	return resp.StatusCode, n, head.String(), err
}

// tally is one kind's counts, shared by its requests' goroutines.
type tally struct {
	mu sync.Mutex
	k  results.AttackKind
}

func (t *tally) add(status int, reqBytes int, respBytes int64, head string, wanted, over bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	class := "error"
	if status > 0 {
		class = strconv.Itoa(status/100) + "xx"
	}
	t.k.Classes[class]++
	t.k.RequestBytes += int64(reqBytes)
	t.k.ResponseBytes += respBytes
	t.k.MaxResponse = max(t.k.MaxResponse, respBytes)
	t.k.MaxRatio = max(t.k.MaxRatio, float64(respBytes)/float64(reqBytes))
	if !wanted {
		t.k.Unwanted++
		if t.k.Example == "" {
			t.k.Example = fmt.Sprintf("%d %.200s", status, head)
		}
	}
	if over {
		t.k.OverBound++
	}
}

// maxInFlight bounds the attacker's concurrent requests: a service that
// answers slowly gets fewer attacks, not an unbounded pile of them.
const maxInFlight = 16

// Run attacks until ctx ends and returns what each kind did. Holders are
// opened first and closed when ctx ends.
func Run(ctx context.Context, c Config) results.Attack {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	kinds := Kinds(c)
	tallies := make([]*tally, len(kinds))
	for i, k := range kinds {
		tallies[i] = &tally{k: results.AttackKind{Name: k.Name, Want: wantString(k.Want), Classes: map[string]int64{}}}
	}
	var held atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 * c.Holders {
		wg.Go(func() {
			if hold(ctx, c, i%2 == 0) {
				held.Add(1)
			}
		})
	}
	hc := &http.Client{Transport: client.NewTransport(), Timeout: c.Timeout}
	defer hc.CloseIdleConnections()
	sem := make(chan struct{}, maxInFlight)
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.Rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			out := results.Attack{Held: int(held.Load())}
			for _, t := range tallies {
				out.Kinds = append(out.Kinds, t.k)
			}
			return out
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // maxInFlight attacks already wait for their answer
		}
		k, t := kinds[n%len(kinds)], tallies[n%len(kinds)]
		r := k.Build(n / len(kinds))
		t.mu.Lock()
		t.k.Sent++
		t.mu.Unlock()
		wg.Go(func() {
			defer func() { <-sem }()
			// The answer is awaited even past ctx: every attack sent is
			// counted with its answer.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Timeout)
			defer cancel()
			status, n, head, err := send(rctx, hc, c, r)
			if err != nil {
				status = 0
			}
			wanted := false
			for _, w := range k.Want {
				wanted = wanted || status == w
			}
			t.add(status, r.Size(), n, head, wanted, n > int64(k.Bound(r.Size())))
		})
	}
}

func wantString(ws []int) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = strconv.Itoa(w)
	}
	return strings.Join(s, " or ")
}

// hold opens a connection and, with neverRead, sends a request for a
// large page and never reads the answer; else sends half a request
// header and never finishes it. It keeps the connection until ctx ends
// and reports whether it was opened and the request written.
func hold(ctx context.Context, c Config, neverRead bool) bool {
	u, err := url.Parse(c.Target)
	if err != nil {
		return false
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return false
	}
	defer conn.Close()
	req := "GET /events?limit=10000&topic=" + url.QueryEscape(PageTopic(c.Namespace)) + " HTTP/1.1\r\nHost: " + u.Host + "\r\n"
	if neverRead {
		// Pipelined: the answers pile up in the socket's buffers unread.
		req = strings.Repeat(req+"\r\n", 8)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		return false
	}
	<-ctx.Done()
	return true
}
