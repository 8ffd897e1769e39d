// Package client applies harness operations to one target (Jepsen's client
// role): it publishes a body and classifies the outcome for the history,
// and reads back what the checker needs: /stats, /audit/summary, the stored
// keys (through GET /events or straight from PostgreSQL) and commit
// latencies.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/subject"
)

// OutcomeHeader is the response header of a 503 telling whether anything
// was queued: OutcomeRejected (surely nothing) or "unknown".
const (
	OutcomeHeader   = "Chronicle-Outcome"
	OutcomeRejected = "rejected"
)

// EventsPageLimit is the page size used to walk GET /events (the API's maximum).
const EventsPageLimit = 10_000

// Polling of WaitReady and WaitDrained.
const (
	DrainPoll      = 200 * time.Millisecond
	pollTimeout    = 5 * time.Second // one poll; a blackholed connection must not eat the whole wait
	readyPollFirst = 20 * time.Millisecond
	readyPollMax   = 500 * time.Millisecond
)

// Client talks to one target. Its fields may be set directly; New fills them.
type Client struct {
	Base  string // base URL, e.g. http://127.0.0.1:8080 (no trailing slash)
	Token string // API token; empty: no Authorization header
	HTTP  *http.Client
	// Subject maps the contract to the target's API (paths, shapes, field
	// names; see harness/subject); nil: the contract as it is.
	Subject *subject.Subject
	// Backlog, when set, counts the target's unprocessed events where its
	// /stats does not say (a subject's Redis list): it stands for
	// queue_depth in the stats read and decides the drain.
	Backlog func(ctx context.Context) (int64, error)
}

// New returns a client of base with a keep-alive transport sized for load.
func New(base, token string) *Client {
	return &Client{
		Base:  strings.TrimRight(base, "/"),
		Token: token,
		HTTP:  &http.Client{Transport: NewTransport(), Timeout: time.Minute},
	}
}

// NewTransport returns the harness's HTTP transport: direct connections
// (no proxy from the environment, so "connection refused" is the target's
// answer), keep-alive, and room for thousands of concurrent connections per
// target so a slow server shows as latency, not as a queue in the client.
func NewTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          0, // no global limit
		MaxIdleConnsPerHost:   10_000,
		MaxConnsPerHost:       0,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Classify turns the outcome of a publish into a history completion type:
//
//	2xx                                         ok    (acknowledged)
//	4xx                                         fail  (rejected whole, nothing queued)
//	503 with Chronicle-Outcome: rejected        fail  (refused before the append)
//	other 5xx, 1xx, 3xx                         info  (unknown: part may be queued)
//	no status, connection refused               fail  (nothing was sent)
//	no status, any other error (timeout, reset,
//	EOF, ...) or no error at all                info
//
// A status, once received, decides: err is only looked at when status is 0.
func Classify(status int, header http.Header, err error) history.Type {
	switch {
	case status >= 200 && status < 300:
		return history.OK
	case status >= 400 && status < 500:
		return history.Fail
	case status == http.StatusServiceUnavailable && strings.EqualFold(strings.TrimSpace(header.Get(OutcomeHeader)), OutcomeRejected):
		return history.Fail
	case status != 0:
		return history.Info
	case err != nil && refused(err):
		return history.Fail
	}
	return history.Info
}

// refused reports whether err is a refused connection. Errors that crossed a
// string boundary (vegeta keeps only err.Error()) are matched on the text.
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused")
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string // the start of the answer's body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("client: %s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Body)
}

// Publish sends one body to POST /publish and classifies the outcome. err
// is nil exactly when the request was acknowledged (2xx); otherwise it is
// a *StatusError or the transport error.
func (c *Client) Publish(ctx context.Context, body []byte) (status int, typ history.Type, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/publish", bytes.NewReader(body))
	if err != nil {
		return 0, history.Fail, fmt.Errorf("client: publish: %w", err) // nothing sent
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, Classify(0, nil, err), fmt.Errorf("client: publish: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)) // the status decides, even if the body is cut
	_, _ = io.Copy(io.Discard, resp.Body)
	typ = Classify(resp.StatusCode, resp.Header, nil)
	if typ != history.OK {
		return resp.StatusCode, typ, &StatusError{Method: http.MethodPost, Path: "/publish", Status: resp.StatusCode, Body: snippet(msg)}
	}
	return resp.StatusCode, typ, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// getJSON GETs path (with query) and decodes a 200 answer into v.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	u := c.Base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("client: GET %s: %w", path, err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("client: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &StatusError{Method: http.MethodGet, Path: path, Status: resp.StatusCode, Body: snippet(msg)}
	}
	if v == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("client: GET %s: decode: %w", path, err)
	}
	return nil
}

// Stats reads GET /stats (see ReadStats).
func (c *Client) Stats(ctx context.Context) (checker.Stats, error) {
	s, _, err := c.ReadStats(ctx)
	return s, err
}

// AuditSummary reads GET /audit/summary (the subject's path); an error
// wrapping ErrNotOffered when the subject has none.
func (c *Client) AuditSummary(ctx context.Context) (checker.Audit, error) {
	path := "/audit/summary"
	if c.Subject != nil {
		if path = c.Subject.API.AuditSummary; path == "" {
			return checker.Audit{}, fmt.Errorf("client: audit summary of %s: %w", c.Base, ErrNotOffered)
		}
	}
	var a checker.Audit
	err := c.getJSON(ctx, path, nil, &a)
	return a, err
}

// Ready is nil when the target is ready: GET /ready answers 200 (the
// subject's readiness path; "auto": /ready, or /health when /ready is 404).
func (c *Client) Ready(ctx context.Context) error {
	path := "/ready"
	if c.Subject != nil && c.Subject.API.Ready != "auto" {
		path = c.Subject.API.Ready
	}
	err := c.getJSON(ctx, path, nil, nil)
	var se *StatusError
	if c.Subject != nil && c.Subject.API.Ready == "auto" && errors.As(err, &se) && se.Status == http.StatusNotFound {
		return c.getJSON(ctx, "/health", nil, nil)
	}
	return err
}

// WaitReady polls /ready (with a short backoff) until it answers 200 and
// returns how long that took. When ctx ends first the error wraps ctx's and
// names the last answer.
func (c *Client) WaitReady(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	wait := readyPollFirst
	for {
		pctx, cancel := context.WithTimeout(ctx, pollTimeout)
		err := c.Ready(pctx)
		cancel()
		if err == nil {
			return time.Since(start), nil
		}
		if !sleep(ctx, wait) {
			return time.Since(start), fmt.Errorf("client: %s not ready after %s (last: %v): %w",
				c.Base, time.Since(start).Round(time.Millisecond), err, ctx.Err())
		}
		wait = min(2*wait, readyPollMax)
	}
}

// DrainStall is how long WaitDrained accepts stats that do not move while
// the queue is not empty before it gives up: a working service makes
// progress on its backlog within seconds.
var DrainStall = 20 * time.Second

// WaitDrained polls /stats every DrainPoll until the queue is drained and
// returns those stats and how long it took. Errors reading /stats (a
// restarting target) are retried; when ctx ends first the error wraps
// ctx's and names the last state seen.
//
// Drained means: queue_depth and pending are 0 and received is the same in
// two consecutive polls, for a target whose /stats reports its queue. For a
// subject whose /stats does not, the sound fallback: its backlog (the
// Backlog function, when set) is 0 and its counters (received,
// unique_processed, duplicated_dropped) have not changed for the subject's
// quiet period (api.stats.quiet).
func (c *Client) WaitDrained(ctx context.Context) (checker.Stats, time.Duration, error) {
	start := time.Now()
	quiet, stall := time.Duration(0), DrainStall
	if c.Subject != nil {
		quiet, stall = c.Subject.API.Stats.Quiet.D(), max(stall, c.Subject.API.Stats.Stall.D())
	}
	var prev *checker.Stats
	var last checker.Stats
	var lastErr error
	changed := time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, pollTimeout)
		s, has, err := c.ReadStats(pctx)
		cancel()
		if err == nil && (s.Received != last.Received || s.UniqueProcessed != last.UniqueProcessed ||
			s.DuplicatedDropped != last.DuplicatedDropped || s.QueueDepth != last.QueueDepth || s.Pending != last.Pending) {
			changed = time.Now()
		}
		empty := s.QueueDepth == 0 && s.Pending == 0
		if err == nil && !empty && time.Since(changed) > stall {
			return s, time.Since(start), fmt.Errorf("client: %s stalled: no progress for %s (queue_depth %d, pending %d, received %d)",
				c.Base, stall, s.QueueDepth, s.Pending, s.Received)
		}
		switch {
		case err != nil:
			lastErr, prev = err, nil
		case empty && !has.Queue() && quiet > 0:
			// The fallback: nothing counted as queued, counters quiet.
			if prev != nil && time.Since(changed) >= quiet {
				return s, time.Since(start), nil
			}
			last, lastErr, prev = s, nil, &s
		case empty:
			if prev != nil && prev.Received == s.Received {
				return s, time.Since(start), nil
			}
			last, lastErr, prev = s, nil, &s
		default:
			last, lastErr, prev = s, nil, nil
		}
		if !sleep(ctx, DrainPoll) {
			state := fmt.Sprintf("queue_depth %d, pending %d, received %d", last.QueueDepth, last.Pending, last.Received)
			if lastErr != nil {
				state = lastErr.Error()
			}
			return last, time.Since(start), fmt.Errorf("client: %s not drained after %s (last: %s): %w",
				c.Base, time.Since(start).Round(time.Millisecond), state, ctx.Err())
		}
	}
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// StoredKeysAPI walks GET /events (pages of EventsPageLimit, following
// next_cursor; for a subject, its limit, its cursor if any, its shape) and
// counts each key whose event_id starts with prefix. A subject whose
// /events has no cursor answers one page: when that page may have been cut
// (it holds as many events as the subject's max_limit) the error wraps
// ErrIncomplete, and the keys are not a read-back.
func (c *Client) StoredKeysAPI(ctx context.Context, prefix string) (map[history.Key]int, error) {
	ev := subject.Events{Path: "/events", Shape: subject.EventsObject, Field: "events", Limit: "limit",
		MaxLimit: EventsPageLimit, Cursor: "cursor", NextCursor: "next_cursor"}
	decode := func(b []byte) (subject.EventsPage, error) {
		return (&subject.Subject{Name: "target", API: subject.API{Events: ev}}).DecodeEvents(b)
	}
	if c.Subject != nil {
		ev, decode = c.Subject.API.Events, c.Subject.DecodeEvents
	}
	out := map[history.Key]int{}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{}
		if ev.Limit != "" && ev.MaxLimit > 0 {
			q.Set(ev.Limit, fmt.Sprint(ev.MaxLimit))
		}
		if cursor != "" {
			q.Set(ev.Cursor, cursor)
		}
		body, err := c.getBody(ctx, ev.Path, q)
		if err != nil {
			return out, fmt.Errorf("client: read stored keys (page %d): %w", pages+1, err)
		}
		p, err := decode(body)
		if err != nil {
			return out, fmt.Errorf("client: read stored keys (page %d): %w", pages+1, err)
		}
		for _, e := range p.Events {
			if strings.HasPrefix(e.EventID, prefix) {
				out[history.Key{Topic: e.Topic, ID: e.EventID}]++
			}
		}
		if ev.Cursor == "" {
			if ev.MaxLimit > 0 && len(p.Events) >= ev.MaxLimit {
				return out, fmt.Errorf("client: read stored keys: %s returned %d events, its most, and has no cursor: %w",
					ev.Path, len(p.Events), ErrIncomplete)
			}
			return out, nil
		}
		if p.Next == "" {
			return out, nil
		}
		cursor = p.Next
		if seen[cursor] {
			return out, fmt.Errorf("client: read stored keys: GET %s returned cursor %q twice", ev.Path, cursor)
		}
		seen[cursor] = true
	}
}

// StoredKeysDB reads the events table straight from PostgreSQL and counts
// each (topic, event_id) whose event_id starts with prefix. A count above 1
// means the table lost its unique constraint: that is what it is there to
// detect, so it groups rather than trusting the key.
func StoredKeysDB(ctx context.Context, databaseURL, prefix string) (map[history.Key]int, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("client: read stored keys: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx,
		`SELECT topic, event_id, count(*) FROM events WHERE starts_with(event_id, $1) GROUP BY 1, 2`, prefix)
	if err != nil {
		return nil, fmt.Errorf("client: read stored keys: %w", err)
	}
	out := map[history.Key]int{}
	var k history.Key
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&k.Topic, &k.ID, &n}, func() error {
		out[k] = int(n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read stored keys: %w", err)
	}
	return out, nil
}

// CommitLatencies returns, for each stored event whose event_id starts with
// prefix, the time from its publish being received to its row being
// committed (stored_at - received_at), in seconds, unsorted. Only events
// received in [since, until) count; a zero bound does not limit.
func CommitLatencies(ctx context.Context, databaseURL, prefix string, since, until time.Time) ([]float64, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("client: read commit latencies: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx,
		`SELECT extract(epoch FROM stored_at - received_at)::float8 FROM events
		 WHERE starts_with(event_id, $1) AND ($2::timestamptz IS NULL OR received_at >= $2)
		   AND ($3::timestamptz IS NULL OR received_at < $3)`, prefix, nullTime(since), nullTime(until))
	if err != nil {
		return nil, fmt.Errorf("client: read commit latencies: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		return nil, fmt.Errorf("client: read commit latencies: %w", err)
	}
	return out, nil
}

// AppliedEntries reads, from our schema in PostgreSQL, the stream entries
// applied with events whose event_id starts with prefix: each entry's
// rows in events (first copies) and dropped (duplicates), grouped by the
// entry that carried them, counted per request signature
// (checker.Signature). One request appended as two entries (a retry the
// service did not recognise) shows as a count of 2.
func AppliedEntries(ctx context.Context, databaseURL, prefix string) (map[string]int, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("client: read applied entries: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `
		SELECT entry_id, array_agg(topic), array_agg(event_id) FROM (
			SELECT entry_id, topic, event_id FROM events WHERE starts_with(event_id, $1)
			UNION ALL
			SELECT entry_id, topic, event_id FROM dropped WHERE starts_with(event_id, $1)
		) r GROUP BY entry_id`, prefix)
	if err != nil {
		return nil, fmt.Errorf("client: read applied entries: %w", err)
	}
	out := map[string]int{}
	var entry string
	var topics, ids []string
	_, err = pgx.ForEachRow(rows, []any{&entry, &topics, &ids}, func() error {
		keys := make([]history.Key, len(ids))
		for i := range ids {
			keys[i] = history.Key{Topic: topics[i], ID: ids[i]}
		}
		out[checker.Signature(keys)]++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read applied entries: %w", err)
	}
	return out, nil
}
