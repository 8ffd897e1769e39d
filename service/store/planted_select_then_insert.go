//go:build plantedbugs

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicleweaver/chronicleweaver/service/event"
)

// SelectThenInsert is the planted bug select-then-insert, a negative
// control (see service/planted): the events table loses its unique key and
// the dedup statement looks the keys up, then inserts those it did not
// find. Nothing stops two concurrent batches holding one key from both
// inserting it. The rest is the copy method's apply (the one built of
// separate statements), with only the dedup statement exchanged.
type SelectThenInsert struct{ *Store }

// DropUniqueKey replaces the events table's primary key by a plain index.
// Call it after Migrate, before the first batch. It holds the migration
// lock, as instances may start at once.
func (s SelectThenInsert) DropUniqueKey(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("store: select-then-insert: acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("store: select-then-insert: take advisory lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock) //nolint:errcheck // released with the session anyway
	if _, err := conn.Exec(ctx, `ALTER TABLE events DROP CONSTRAINT IF EXISTS events_pkey;
		CREATE INDEX IF NOT EXISTS events_key_not_unique ON events (topic, event_id)`); err != nil {
		return fmt.Errorf("store: select-then-insert: drop the unique key: %w", err)
	}
	return nil
}

// ApplyBatch is the copy method's apply with selectThenInsert as its dedup
// statement.
func (s SelectThenInsert) ApplyBatch(ctx context.Context, worker string, entries []Entry) (Applied, error) {
	st := s.copySteps()
	st.insert = selectThenInsert
	return s.applySteps(ctx, worker, entries, st)
}

// selectThenInsert looks the keys up, then inserts those it did not find,
// with no unique key to stop a concurrent batch doing the same.
func selectThenInsert(ctx context.Context, tx pgx.Tx, worker string, firsts []copyRow) (pgx.Rows, error) {
	c := columns(firsts)
	rows, err := tx.Query(ctx, `SELECT e.topic, e.event_id FROM events e
		JOIN unnest($1::text[], $2::text[]) AS u(topic, event_id) ON e.topic = u.topic AND e.event_id = u.event_id`, c.topics, c.ids)
	if err != nil {
		return nil, err
	}
	found := map[event.Key]bool{}
	for rows.Next() {
		var k event.Key
		if err := rows.Scan(&k.Topic, &k.EventID); err != nil {
			rows.Close()
			return nil, err
		}
		found[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var missing []copyRow
	for _, r := range firsts {
		if !found[r.ev.Key()] {
			missing = append(missing, r)
		}
	}
	m := columns(missing)
	ts := make([]time.Time, len(missing))
	payloads := make([]json.RawMessage, len(missing))
	for i, r := range missing {
		ts[i], payloads[i] = r.ev.Timestamp, r.ev.Payload
	}
	return tx.Query(ctx, `
		INSERT INTO events (topic, event_id, source, ts, payload, received_at, queued_at, stored_at, worker_id, entry_id)
		SELECT topic, event_id, source, ts, payload, received_at, queued_at, clock_timestamp(), $1, entry_id
		FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[], $9::text[])
			AS u(topic, event_id, source, ts, payload, received_at, queued_at, entry_id)
		RETURNING topic, event_id`, worker,
		m.topics, m.ids, m.sources, ts, payloads, m.received, m.queued, m.entryIDs)
}
