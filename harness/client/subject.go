package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/subject"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

// What a subject may not offer, and reads that cannot be complete.
var (
	// ErrNotOffered: the subject has no such endpoint or field.
	ErrNotOffered = errors.New("not offered by the subject")
	// ErrIncomplete: the answer may be cut (a capped /events without a cursor).
	ErrIncomplete = errors.New("the subject's answer may be incomplete")
)

// maxStatsBody bounds a /stats answer.
const maxStatsBody = 1 << 20

// ReadStats reads GET /stats through the subject's field map (the
// contract's fields without a subject) and says which counters the answer
// held. When the answer does not report the queue and Backlog is set, the
// backlog stands for queue_depth.
func (c *Client) ReadStats(ctx context.Context) (checker.Stats, subject.StatsFields, error) {
	if c.Subject == nil {
		var s checker.Stats
		err := c.getJSON(ctx, "/stats", nil, &s)
		all := subject.StatsFields{Received: true, UniqueProcessed: true, DuplicatedDropped: true, QueueDepth: true, Pending: true, DeadLettered: true}
		return s, all, err
	}
	body, err := c.getBody(ctx, c.Subject.API.Stats.Path, nil)
	if err != nil {
		return checker.Stats{}, subject.StatsFields{}, err
	}
	v, err := c.Subject.DecodeStats(body)
	if err != nil {
		return checker.Stats{}, v.Has, err
	}
	s := checker.Stats{Received: v.Received, UniqueProcessed: v.UniqueProcessed, DuplicatedDropped: v.DuplicatedDropped,
		QueueDepth: v.QueueDepth, Pending: v.Pending, DeadLettered: v.DeadLettered}
	if !v.Has.Queue() && c.Backlog != nil {
		n, err := c.Backlog(ctx)
		if err != nil {
			return s, v.Has, fmt.Errorf("client: backlog of %s: %w", c.Base, err)
		}
		s.QueueDepth = n
	}
	return s, v.Has, nil
}

// getBody GETs path (with query) and returns a 200 answer's body (at most
// 64 MiB: a whole /events of a subject without pages can be large).
func (c *Client) getBody(ctx context.Context, path string, q url.Values) ([]byte, error) {
	u := c.Base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", path, err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &StatusError{Method: http.MethodGet, Path: path, Status: resp.StatusCode, Body: snippet(msg)}
	}
	limit := int64(64 << 20)
	if path == c.statsPath() {
		limit = maxStatsBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("client: GET %s: answer larger than %d bytes", path, limit)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("client: GET %s: the answer is not JSON: %s", path, snippet(b))
	}
	return b, nil
}

func (c *Client) statsPath() string {
	if c.Subject != nil {
		return c.Subject.API.Stats.Path
	}
	return "/stats"
}

// RedisListBacklog returns a backlog function reading LLEN key from the
// Redis at redisURL (redis://HOST:PORT/DB).
func RedisListBacklog(redisURL, key string) (func(ctx context.Context) (int64, error), error) {
	u, err := url.Parse(redisURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("client: backlog: Redis URL %q: want redis://HOST:PORT/DB", redisURL)
	}
	db := strings.Trim(u.Path, "/")
	return func(ctx context.Context) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, pollTimeout)
		defer cancel()
		if db != "" && db != "0" {
			return 0, fmt.Errorf("client: backlog: Redis database %s: only database 0 is read", db)
		}
		reply, err := devenv.RedisCommand(ctx, u.Host, "LLEN", key)
		if err != nil {
			return 0, fmt.Errorf("client: LLEN %s: %w", key, err)
		}
		n, err := strconv.ParseInt(reply, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("client: LLEN %s: %q", key, reply)
		}
		return n, nil
	}, nil
}

// StoredKeysIn reads the subject's table of stored events (rb) straight
// from PostgreSQL and counts each (topic, event_id) whose event_id starts
// with prefix; a count above 1 means the table lost its uniqueness.
func StoredKeysIn(ctx context.Context, databaseURL string, rb subject.ReadBack, prefix string) (map[history.Key]int, error) {
	if rb.Table == "" {
		return nil, fmt.Errorf("client: read stored keys: the subject names no table: %w", ErrNotOffered)
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("client: read stored keys: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	topic, id := ident(rb.Topic), ident(rb.EventID)
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT %s::text, %s::text, count(*) FROM %s WHERE starts_with(%s::text, $1) GROUP BY 1, 2`,
		topic, id, ident(rb.Table), id), prefix)
	if err != nil {
		return nil, fmt.Errorf("client: read stored keys from %s: %w", rb.Table, err)
	}
	out := map[history.Key]int{}
	var k history.Key
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&k.Topic, &k.ID, &n}, func() error {
		out[k] = int(n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read stored keys from %s: %w", rb.Table, err)
	}
	return out, nil
}

// Committed is when one stored event was committed and, where the subject
// records it, received.
type Committed struct {
	Key        history.Key
	Committed  time.Time
	Received   time.Time // zero: the subject does not record it
	HasReceive bool
}

// CommitTimes reads, for each stored event of the subject's table whose
// event_id starts with prefix, its commit time column (and its receive time
// column, when rb names one).
func CommitTimes(ctx context.Context, databaseURL string, rb subject.ReadBack, prefix string) ([]Committed, error) {
	if rb.Table == "" || rb.CommittedAt == "" {
		return nil, fmt.Errorf("client: commit times: the subject names no commit time column: %w", ErrNotOffered)
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("client: commit times: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	recv := "NULL::timestamptz"
	if rb.ReceivedAt != "" {
		recv = ident(rb.ReceivedAt) + "::timestamptz"
	}
	id := ident(rb.EventID)
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT %s::text, %s::text, %s::timestamptz, %s FROM %s WHERE starts_with(%s::text, $1)`,
		ident(rb.Topic), id, ident(rb.CommittedAt), recv, ident(rb.Table), id), prefix)
	if err != nil {
		return nil, fmt.Errorf("client: commit times from %s: %w", rb.Table, err)
	}
	var out []Committed
	var c Committed
	var r *time.Time
	_, err = pgx.ForEachRow(rows, []any{&c.Key.Topic, &c.Key.ID, &c.Committed, &r}, func() error {
		c.Received, c.HasReceive = time.Time{}, r != nil
		if r != nil {
			c.Received = *r
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: commit times from %s: %w", rb.Table, err)
	}
	return out, nil
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }
