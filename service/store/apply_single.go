package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// applySQL is the whole batch apply as one statement, so one round trip
// and one implicit transaction do what the multi-statement path does in
// five: ledger, first copies, dropped copies, counters. Data-modifying CTEs
// share one snapshot and see each other only through RETURNING, which is
// all this needs: the ledger says which entries are fresh, the events
// insert says which first copies were new, everything else follows.
//
// Rows are written in sorted order within each table (ledger by token,
// events by key, counters by topic), so concurrent batches cannot deadlock.
const applySQL = `
WITH tokens AS (
	SELECT token, entry_id FROM unnest($1::text[], $2::text[]) AS t(token, entry_id)
), input AS (
	SELECT * FROM unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::jsonb[],
		$10::timestamptz[], $11::timestamptz[], $12::text[])
		AS u(token, ord, topic, event_id, source, ts, payload, received_at, queued_at, entry_id)
), ledger AS (
	INSERT INTO applied_entries (token, entry_id, outcome)
	SELECT token, entry_id, 'a' FROM tokens ORDER BY token
	ON CONFLICT (token) DO NOTHING
	RETURNING token
), fresh AS (
	SELECT * FROM input WHERE token IN (SELECT token FROM ledger)
), firsts AS (
	SELECT DISTINCT ON (topic, event_id) * FROM fresh ORDER BY topic, event_id, ord
), ins AS (
	INSERT INTO events (topic, event_id, source, ts, payload, received_at, queued_at, stored_at, worker_id, entry_id)
	SELECT topic, event_id, source, ts, payload, received_at, queued_at, clock_timestamp(), $13, entry_id
	FROM firsts ORDER BY topic, event_id
	ON CONFLICT (topic, event_id) DO NOTHING
	RETURNING topic, event_id
), kept AS (
	SELECT f.ord FROM firsts f JOIN ins ON ins.topic = f.topic AND ins.event_id = f.event_id
), dups AS (
	SELECT * FROM fresh WHERE ord NOT IN (SELECT ord FROM kept)
), dropped_rows AS (
	INSERT INTO dropped (topic, event_id, source, received_at, queued_at, dropped_at, worker_id, entry_id)
	SELECT topic, event_id, source, received_at, queued_at, clock_timestamp(), $13, entry_id FROM dups
), per_topic AS (
	SELECT topic,
		count(*) FILTER (WHERE ord IN (SELECT ord FROM kept)) AS processed,
		count(*) FILTER (WHERE ord NOT IN (SELECT ord FROM kept)) AS dropped
	FROM fresh GROUP BY topic
), counted AS (
	INSERT INTO counters (worker_id, topic, processed, dropped, failed)
	SELECT $13, topic, processed, dropped, 0 FROM per_topic ORDER BY topic
	ON CONFLICT (worker_id, topic) DO UPDATE SET
		processed = counters.processed + excluded.processed,
		dropped = counters.dropped + excluded.dropped
)
SELECT coalesce((SELECT array_agg(token) FROM ledger), '{}'), (SELECT count(*) FROM kept), (SELECT count(*) FROM dups)`

// applyOneStatement is ApplyBatch for the unnest method: the same result as
// the multi-statement path (applySteps), in one statement.
func (s *Store) applyOneStatement(ctx context.Context, worker string, entries []Entry) (Applied, error) {
	// One candidate per token (a token twice in a batch is the same entry
	// appended twice), in stream order.
	first := make(map[string]int, len(entries))
	var cands []int
	for i, e := range entries {
		if _, ok := first[e.Token]; !ok {
			first[e.Token] = i
			cands = append(cands, i)
		}
	}
	sorted := slices.Clone(cands)
	slices.SortFunc(sorted, func(a, b int) int {
		switch {
		case entries[a].Token < entries[b].Token:
			return -1
		case entries[a].Token > entries[b].Token:
			return 1
		}
		return 0
	})
	tokens := make([]string, len(sorted))
	tokenEntries := make([]string, len(sorted))
	for k, i := range sorted {
		tokens[k], tokenEntries[k] = entries[i].Token, entries[i].EntryID
	}
	var n int
	for _, i := range cands {
		n += len(entries[i].Events)
	}
	var (
		rowTokens, topics, ids, sources, entryIDs = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		ords                                      = make([]int32, 0, n)
		ts, received, queued                      = make([]time.Time, 0, n), make([]time.Time, 0, n), make([]time.Time, 0, n)
		payloads                                  = make([]json.RawMessage, 0, n)
	)
	for _, i := range cands {
		e := &entries[i]
		for j := range e.Events {
			ev := &e.Events[j]
			rowTokens = append(rowTokens, e.Token)
			ords = append(ords, int32(len(ords)))
			topics, ids, sources = append(topics, ev.Topic), append(ids, ev.EventID), append(sources, ev.Source)
			ts, payloads = append(ts, ev.Timestamp), append(payloads, ev.Payload)
			received, queued, entryIDs = append(received, e.ReceivedAt), append(queued, e.QueuedAt), append(entryIDs, e.EntryID)
		}
	}
	var freshTokens []string
	var res Applied
	var inserted, dropped int64
	err := s.pool.QueryRow(ctx, applySQL, tokens, tokenEntries,
		rowTokens, ords, topics, ids, sources, ts, payloads, received, queued, entryIDs, worker,
	).Scan(&freshTokens, &inserted, &dropped)
	if err != nil {
		return Applied{}, fmt.Errorf("store: apply %d entries: %w", len(entries), err)
	}
	res.Inserted, res.Dropped = int(inserted), int(dropped)
	res.StoredAt = time.Now()

	isFresh := make(map[string]bool, len(freshTokens))
	for _, t := range freshTokens {
		isFresh[t] = true
	}
	if err := classify(ctx, s.pool, entries, first, isFresh, &res); err != nil {
		return Applied{}, err
	}
	return res, nil
}
