package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Counts are the exact stats, read from the counters written with each batch.
type Counts struct {
	UniqueProcessed   int64    // distinct stored keys
	DuplicatedDropped int64    // copies dropped as duplicates
	Failed            int64    // event copies of dead-lettered entries
	Topics            []string // topics with at least one stored event, sorted; the first Options.MaxTopics
	TopicsCount       int64    // how many such topics there are (len(Topics) unless cut)
}

// Received is every applied copy: unique_processed + duplicated_dropped.
func (c Counts) Received() int64 { return c.UniqueProcessed + c.DuplicatedDropped }

// maxTopics is the LIMIT for listed topics or workers (NULL: none).
func (s *Store) maxTopics() *int {
	if s.opts.MaxTopics > 0 {
		return &s.opts.MaxTopics
	}
	return nil
}

// Counts reads the stats. At most Options.MaxTopics topics are listed (the
// first by name); TopicsCount counts them all.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.pool.QueryRow(ctx, `
		WITH t AS (SELECT DISTINCT topic FROM counters WHERE processed > 0)
		SELECT coalesce(sum(processed), 0)::bigint, coalesce(sum(dropped), 0)::bigint, coalesce(sum(failed), 0)::bigint,
		       (SELECT count(*) FROM t),
		       array(SELECT topic FROM t ORDER BY topic LIMIT $1)
		FROM counters`, s.maxTopics()).Scan(&c.UniqueProcessed, &c.DuplicatedDropped, &c.Failed, &c.TopicsCount, &c.Topics)
	if err != nil {
		return Counts{}, fmt.Errorf("store: read counters: %w", err)
	}
	return c, nil
}

// Cursor is a position in the /events order (newest timestamp first).
type Cursor struct {
	TS      time.Time
	Topic   string
	EventID string
}

// String encodes the cursor as an opaque URL-safe string.
func (c Cursor) String() string {
	b, _ := json.Marshal([]any{c.TS.UnixMicro(), c.Topic, c.EventID})
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadCursor is returned by ParseCursor for a string no page produced.
var ErrBadCursor = errors.New("store: cursor is not one a previous page returned")

// ParseCursor decodes a cursor made by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	var parts []json.RawMessage
	if json.Unmarshal(b, &parts) != nil || len(parts) != 3 {
		return Cursor{}, ErrBadCursor
	}
	var us int64
	var c Cursor
	if json.Unmarshal(parts[0], &us) != nil || json.Unmarshal(parts[1], &c.Topic) != nil || json.Unmarshal(parts[2], &c.EventID) != nil {
		return Cursor{}, ErrBadCursor
	}
	// The topic and event_id of a page's last event are valid UTF-8
	// without NUL and within the field limits; anything else would reach
	// PostgreSQL as a bad parameter.
	for _, f := range []struct {
		s   string
		max int
	}{{c.Topic, 255}, {c.EventID, 1024}} {
		if len(f.s) > f.max || !utf8.ValidString(f.s) || strings.IndexByte(f.s, 0) >= 0 {
			return Cursor{}, ErrBadCursor
		}
	}
	c.TS = time.UnixMicro(us).UTC()
	// Event timestamps lie in years 0001..9999 (the request rule), so no
	// page returns a cursor outside them; such an instant would also
	// overflow on its way to PostgreSQL and select a wrong page.
	if y := c.TS.Year(); y < 1 || y > 9999 {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}

// EventsQuery selects one page of stored events.
type EventsQuery struct {
	Topic    string
	HasTopic bool
	Limit    int
	After    *Cursor
	// MaxBytes bounds the page's size, about as the API encodes it
	// (EVENTS_PAGE_BYTES); 0: no bound. The page ends before the event
	// that would pass it (it holds at least one event), and Next then
	// continues from there.
	MaxBytes int
}

// eventSize is about the size of e in the API's JSON (field names,
// timestamps and quoting included; strings are counted unescaped, as
// stored, which the 512 bytes of slack cover for ordinary text).
func eventSize(e *StoredEvent) int {
	return 512 + len(e.EventID) + len(e.Topic) + len(e.Source) + len(e.Payload)
}

// StoredEvent is an event as stored.
type StoredEvent struct {
	EventID   string          `json:"event_id"`
	Topic     string          `json:"topic"`
	Source    string          `json:"source"`
	Payload   json.RawMessage `json:"payload"`
	Timestamp time.Time       `json:"timestamp"`
	StoredAt  time.Time       `json:"stored_at"`
}

// EventsPage is one page of events and the total matching the filter.
type EventsPage struct {
	Count  int64
	Events []StoredEvent
	Next   *Cursor
}

// Events returns one page, newest event timestamp first, ties broken by
// (topic, event_id) descending.
func (s *Store) Events(ctx context.Context, q EventsQuery) (EventsPage, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.HasTopic {
		where = append(where, "topic = "+arg(q.Topic))
	}
	if q.After != nil {
		where = append(where, fmt.Sprintf("(ts, topic, event_id) < (%s, %s, %s)", arg(q.After.TS), arg(q.After.Topic), arg(q.After.EventID)))
	}
	sql := "SELECT event_id, topic, source, payload, ts, stored_at FROM events"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY ts DESC, topic DESC, event_id DESC LIMIT " + arg(q.Limit+1)

	var page EventsPage
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return page, fmt.Errorf("store: read events: %w", err)
	}
	defer rows.Close()
	size, more := 0, false
	for rows.Next() {
		var e StoredEvent
		if err := rows.Scan(&e.EventID, &e.Topic, &e.Source, &e.Payload, &e.Timestamp, &e.StoredAt); err != nil {
			return page, fmt.Errorf("store: read events: scan: %w", err)
		}
		size += eventSize(&e)
		if len(page.Events) == q.Limit || (q.MaxBytes > 0 && size > q.MaxBytes && len(page.Events) > 0) {
			more = true // the rest waits for the next page
			break
		}
		e.Timestamp, e.StoredAt = e.Timestamp.UTC(), e.StoredAt.UTC()
		page.Events = append(page.Events, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("store: read events: %w", err)
	}
	if more {
		last := page.Events[len(page.Events)-1]
		page.Next = &Cursor{TS: last.Timestamp, Topic: last.Topic, EventID: last.EventID}
	}
	countSQL := "SELECT coalesce(sum(processed), 0)::bigint FROM counters"
	var countArgs []any
	if q.HasTopic {
		countSQL += " WHERE topic = $1"
		countArgs = append(countArgs, q.Topic)
	}
	if err := s.pool.QueryRow(ctx, countSQL, countArgs...).Scan(&page.Count); err != nil {
		return page, fmt.Errorf("store: count events: %w", err)
	}
	return page, nil
}

// Audit actions.
const (
	ActionReceived  = "RECEIVED"
	ActionQueued    = "QUEUED"
	ActionProcessed = "PROCESSED"
	ActionDropped   = "DROPPED"
	ActionFailed    = "FAILED"
)

// Actions lists the audit actions in lifecycle order.
var Actions = []string{ActionReceived, ActionQueued, ActionProcessed, ActionDropped, ActionFailed}

// AuditQuery filters the audit log. Empty strings and nil times do not filter.
type AuditQuery struct {
	Action     string
	Topic      string
	HasTopic   bool
	EventID    string
	HasEventID bool
	From, To   *time.Time
	Limit      int
}

// AuditLog is one audit entry.
type AuditLog struct {
	ID        int64     `json:"id"`
	EventID   string    `json:"event_id"`
	Topic     string    `json:"topic"`
	Source    string    `json:"source"`
	Action    string    `json:"action"`
	WorkerID  *string   `json:"worker_id"`
	CreatedAt time.Time `json:"created_at"`
}

// Audit returns the number of matching entries and the newest Limit of them.
func (s *Store) Audit(ctx context.Context, q AuditQuery) (int64, []AuditLog, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Action != "" {
		where = append(where, "action = "+arg(q.Action))
	}
	if q.HasTopic {
		where = append(where, "topic = "+arg(q.Topic))
	}
	if q.HasEventID {
		where = append(where, "event_id = "+arg(q.EventID))
	}
	if q.From != nil {
		where = append(where, "created_at >= "+arg(*q.From))
	}
	if q.To != nil {
		where = append(where, "created_at <= "+arg(*q.To))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var count int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM audit_log"+cond, args...).Scan(&count); err != nil {
		return 0, nil, fmt.Errorf("store: count audit: %w", err)
	}
	rows, err := s.pool.Query(ctx, "SELECT id, event_id, topic, source, action, worker_id, created_at FROM audit_log"+
		cond+" ORDER BY created_at DESC, id DESC LIMIT "+arg(q.Limit), args...)
	if err != nil {
		return 0, nil, fmt.Errorf("store: read audit: %w", err)
	}
	defer rows.Close()
	logs := []AuditLog{}
	for rows.Next() {
		var l AuditLog
		if err := rows.Scan(&l.ID, &l.EventID, &l.Topic, &l.Source, &l.Action, &l.WorkerID, &l.CreatedAt); err != nil {
			return 0, nil, fmt.Errorf("store: read audit: scan: %w", err)
		}
		l.CreatedAt = l.CreatedAt.UTC()
		logs = append(logs, l)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("store: read audit: %w", err)
	}
	return count, logs, nil
}

// AuditCounts counts audit entries by action.
type AuditCounts struct {
	Received  int64 `json:"received"`
	Queued    int64 `json:"queued"`
	Processed int64 `json:"processed"`
	Dropped   int64 `json:"dropped"`
	Failed    int64 `json:"failed"`
}

func (a *AuditCounts) add(processed, dropped, failed int64) {
	all := processed + dropped + failed
	a.Received += all
	a.Queued += all
	a.Processed += processed
	a.Dropped += dropped
	a.Failed += failed
}

// AuditSummary is the audit log counted in total, by topic and by worker.
// ByTopic and ByWorker hold at most Options.MaxTopics entries each, the
// busiest (most event copies) first; Topics and Workers count them all.
type AuditSummary struct {
	Total    AuditCounts
	ByTopic  map[string]*AuditCounts
	ByWorker map[string]*AuditCounts
	Topics   int64
	Workers  int64
}

// AuditSummary reads the summary from the counters (exact: they are written
// in the same transaction as the audit rows they count).
func (s *Store) AuditSummary(ctx context.Context) (AuditSummary, error) {
	sum := AuditSummary{ByTopic: map[string]*AuditCounts{}, ByWorker: map[string]*AuditCounts{}}
	var p, d, f int64
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(sum(processed), 0)::bigint, coalesce(sum(dropped), 0)::bigint, coalesce(sum(failed), 0)::bigint,
		       count(DISTINCT topic), count(DISTINCT worker_id)
		FROM counters`).Scan(&p, &d, &f, &sum.Topics, &sum.Workers)
	if err != nil {
		return sum, fmt.Errorf("store: read audit summary: %w", err)
	}
	sum.Total.add(p, d, f)
	for _, g := range []struct {
		col string
		m   map[string]*AuditCounts
	}{{"topic", sum.ByTopic}, {"worker_id", sum.ByWorker}} {
		rows, err := s.pool.Query(ctx, `
			SELECT `+g.col+`, sum(processed)::bigint, sum(dropped)::bigint, sum(failed)::bigint FROM counters
			GROUP BY 1 ORDER BY sum(processed + dropped + failed) DESC, 1 LIMIT $1`, s.maxTopics())
		if err != nil {
			return sum, fmt.Errorf("store: read audit summary by %s: %w", g.col, err)
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k, &p, &d, &f); err != nil {
				rows.Close()
				return sum, fmt.Errorf("store: read audit summary by %s: scan: %w", g.col, err)
			}
			c := &AuditCounts{}
			c.add(p, d, f)
			g.m[k] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return sum, fmt.Errorf("store: read audit summary by %s: %w", g.col, err)
		}
	}
	return sum, nil
}
