//go:build plantedbugs

package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// DedupEventID is the planted bug dedup-event-id, a negative control (see
// service/planted): the dedup statement takes event_id alone for an
// event's identity, as if event ids were global. An event whose id is
// already stored, or is first in the batch, under another topic is not
// inserted: the apply records it as a dropped duplicate, so the counters
// agree with the rows and only the missing key shows. Nothing else
// changes, so a run in which no event id is used under two topics cannot
// tell it from the production store. The rest is the copy method's apply,
// with only the dedup statement exchanged.
type DedupEventID struct{ *Store }

// ApplyBatch is the copy method's apply with dedupEventID as its dedup
// statement.
func (s DedupEventID) ApplyBatch(ctx context.Context, worker string, entries []Entry) (Applied, error) {
	st := s.copySteps()
	st.insert = dedupEventID
	return s.applySteps(ctx, worker, entries, st)
}

// dedupEventID inserts, of the first copies, one per event id (the first
// in key order) whose event id no stored row of any topic has.
func dedupEventID(ctx context.Context, tx pgx.Tx, worker string, firsts []copyRow) (pgx.Rows, error) {
	seen := map[string]bool{}
	var one []copyRow
	for _, r := range firsts {
		if !seen[r.ev.EventID] {
			seen[r.ev.EventID] = true
			one = append(one, r)
		}
	}
	c := columns(one)
	ts := make([]time.Time, len(one))
	payloads := make([]json.RawMessage, len(one))
	for i, r := range one {
		ts[i], payloads[i] = r.ev.Timestamp, r.ev.Payload
	}
	return tx.Query(ctx, `
		INSERT INTO events (topic, event_id, source, ts, payload, received_at, queued_at, stored_at, worker_id, entry_id)
		SELECT topic, event_id, source, ts, payload, received_at, queued_at, clock_timestamp(), $1, entry_id
		FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[], $9::text[])
			AS u(topic, event_id, source, ts, payload, received_at, queued_at, entry_id)
		WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = u.event_id)
		ORDER BY topic, event_id
		ON CONFLICT (topic, event_id) DO NOTHING
		RETURNING topic, event_id`, worker,
		c.topics, c.ids, c.sources, ts, payloads, c.received, c.queued, c.entryIDs)
}
