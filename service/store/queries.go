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
	Topics            []string // topics with at least one stored event, sorted
}

// Received is every applied copy: unique_processed + duplicated_dropped.
func (c Counts) Received() int64 { return c.UniqueProcessed + c.DuplicatedDropped }

// Counts reads the stats.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(sum(processed), 0)::bigint, coalesce(sum(dropped), 0)::bigint, coalesce(sum(failed), 0)::bigint,
		       coalesce(array_agg(DISTINCT topic ORDER BY topic) FILTER (WHERE processed > 0), '{}')
		FROM counters`).Scan(&c.UniqueProcessed, &c.DuplicatedDropped, &c.Failed, &c.Topics)
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
	for rows.Next() {
		var e StoredEvent
		if err := rows.Scan(&e.EventID, &e.Topic, &e.Source, &e.Payload, &e.Timestamp, &e.StoredAt); err != nil {
			return page, fmt.Errorf("store: read events: scan: %w", err)
		}
		e.Timestamp, e.StoredAt = e.Timestamp.UTC(), e.StoredAt.UTC()
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("store: read events: %w", err)
	}
	if len(page.Events) > q.Limit {
		page.Events = page.Events[:q.Limit]
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
type AuditSummary struct {
	Total    AuditCounts
	ByTopic  map[string]*AuditCounts
	ByWorker map[string]*AuditCounts
}

// AuditSummary reads the summary from the counters (exact: they are written
// in the same transaction as the audit rows they count).
func (s *Store) AuditSummary(ctx context.Context) (AuditSummary, error) {
	sum := AuditSummary{ByTopic: map[string]*AuditCounts{}, ByWorker: map[string]*AuditCounts{}}
	rows, err := s.pool.Query(ctx, "SELECT worker_id, topic, processed, dropped, failed FROM counters")
	if err != nil {
		return sum, fmt.Errorf("store: read audit summary: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w, t string
		var p, d, f int64
		if err := rows.Scan(&w, &t, &p, &d, &f); err != nil {
			return sum, fmt.Errorf("store: read audit summary: scan: %w", err)
		}
		sum.Total.add(p, d, f)
		for _, m := range []struct {
			k string
			m map[string]*AuditCounts
		}{{t, sum.ByTopic}, {w, sum.ByWorker}} {
			c := m.m[m.k]
			if c == nil {
				c = &AuditCounts{}
				m.m[m.k] = c
			}
			c.add(p, d, f)
		}
	}
	if err := rows.Err(); err != nil {
		return sum, fmt.Errorf("store: read audit summary: %w", err)
	}
	return sum, nil
}
