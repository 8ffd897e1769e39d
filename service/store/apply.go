package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicleweaver/chronicleweaver/service/event"
)

// Batch upsert methods.
const (
	MethodUnnest = "unnest" // INSERT ... SELECT FROM unnest($arrays) ON CONFLICT DO NOTHING
	MethodCopy   = "copy"   // COPY into a session temp table, then INSERT ... SELECT ON CONFLICT DO NOTHING
)

// Entry is one stream entry's events, ready to apply.
type Entry struct {
	Token      string // the ledger key
	EntryID    string // stream entry ID
	ReceivedAt time.Time
	QueuedAt   time.Time
	Events     []event.Event
}

// Applied says what ApplyBatch did with each entry.
type Applied struct {
	Fresh      []int // indexes of the entries this call applied
	Seen       []int // indexes of entries the ledger already had as applied: acknowledge them
	SeenFailed []int // indexes of entries the ledger had as failed: dead-letter them (again)
	// Twice are the indexes (among Seen) of entries whose token the ledger
	// holds under another stream entry ID: a second copy of one append,
	// written when a client library retried a command whose first attempt
	// had taken effect. Redeliveries of one entry are not in it.
	Twice    []int
	Inserted int // rows inserted (first copies)
	Dropped  int // duplicate copies recorded
	StoredAt time.Time
}

// copyRow is one event copy of a fresh entry.
type copyRow struct {
	ev    *event.Event
	entry *Entry
}

// ApplyBatch applies entries in one transaction: it records them in the
// ledger, inserts the first copy of every new (topic, event_id), records the
// other copies as dropped, and updates worker's counters. An entry the ledger
// already holds changes nothing. Keys are written in sorted order, so
// concurrent batches cannot deadlock.
//
// The unnest method does it in one statement (applyOneStatement), the copy
// method in a transaction of several (applySteps with copySteps).
//
// An error leaves nothing applied. IsTransient tells whether to retry as is.
func (s *Store) ApplyBatch(ctx context.Context, worker string, entries []Entry) (Applied, error) {
	if s.opts.Method == MethodCopy {
		return s.applySteps(ctx, worker, entries, s.copySteps())
	}
	return s.applyOneStatement(ctx, worker, entries)
}

// steps are the statements of the multi-statement apply, one field each:
// the seam between the apply's logic (which copy is first, what counts as
// dropped) and the SQL that records it, so that a variant of the apply
// exchanges one statement and keeps the others.
type steps struct {
	ledger   ledgerStep
	insert   insertStep
	counters countersStep
}

// A ledgerStep records the entries' tokens in the ledger with outcome and
// returns the indexes of the fresh entries, sorting the others into res.
type ledgerStep func(ctx context.Context, tx pgx.Tx, entries []Entry, outcome byte, res *Applied) ([]int, error)

// An insertStep is the dedup statement: it inserts the first copies (sorted
// by key) whose key is not stored yet and returns the keys it inserted.
type insertStep func(ctx context.Context, tx pgx.Tx, worker string, firsts []copyRow) (pgx.Rows, error)

// A countersStep queues worker's per-topic counter increments into b, the
// transaction's last round trip.
type countersStep func(b *pgx.Batch, worker string, per map[string]*topicCount)

// copySteps are the copy method's statements.
func (s *Store) copySteps() steps {
	return steps{ledger: s.claimLedger, insert: s.insertViaCopy, counters: queueCounterRows}
}

// applySteps is ApplyBatch as a transaction of several statements, st's.
func (s *Store) applySteps(ctx context.Context, worker string, entries []Entry, st steps) (Applied, error) {
	var res Applied
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		res = Applied{}
		fresh, err := st.ledger(ctx, tx, entries, 'a', &res)
		if err != nil {
			return err
		}
		// First copy wins, in stream order: entries are in stream order and
		// events keep their order inside an entry.
		var rows []copyRow
		for _, i := range fresh {
			e := &entries[i]
			for j := range e.Events {
				rows = append(rows, copyRow{ev: &e.Events[j], entry: e})
			}
		}
		firsts, dups := splitFirsts(rows)
		inserted, err := insertFirsts(ctx, tx, worker, firsts, st.insert)
		if err != nil {
			return err
		}
		for _, r := range firsts {
			if !inserted[r.ev.Key()] {
				dups = append(dups, r) // stored by an earlier batch
			}
		}
		res.Inserted, res.Dropped = len(inserted), len(dups)

		b := &pgx.Batch{}
		queueDropped(b, worker, dups)
		st.counters(b, worker, counts(firsts, inserted, dups))
		if b.Len() == 0 {
			return nil
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("store: record duplicates and counters: %w", err)
		}
		return nil
	})
	if err != nil {
		return Applied{}, err
	}
	res.StoredAt = time.Now()
	return res, nil
}

// claimLedger inserts the entries' tokens into the ledger with outcome and
// returns the indexes of those it inserted (the fresh ones). The others are
// sorted into res.Seen and res.SeenFailed by the outcome recorded earlier.
func (s *Store) claimLedger(ctx context.Context, tx pgx.Tx, entries []Entry, outcome byte, res *Applied) ([]int, error) {
	// One candidate per token: a token twice in a batch (a retried append)
	// is the same entry.
	first := make(map[string]int, len(entries))
	tokens := make([]string, 0, len(entries))
	ids := make([]string, 0, len(entries))
	for i, e := range entries {
		if _, ok := first[e.Token]; ok {
			continue
		}
		first[e.Token] = i
		tokens = append(tokens, e.Token)
		ids = append(ids, e.EntryID)
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO applied_entries (token, entry_id, outcome)
		SELECT t, e, $3::"char" FROM unnest($1::text[], $2::text[]) AS u(t, e)
		ORDER BY t
		ON CONFLICT (token) DO NOTHING
		RETURNING token`, tokens, ids, string(outcome))
	if err != nil {
		return nil, fmt.Errorf("store: ledger insert: %w", err)
	}
	isFresh := make(map[string]bool, len(tokens))
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: ledger insert: scan: %w", err)
		}
		isFresh[t] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: ledger insert: %w", err)
	}
	if err := classify(ctx, tx, entries, first, isFresh, res); err != nil {
		return nil, err
	}
	return res.Fresh, nil
}

// querier is what classify needs of a transaction or a pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// classify sorts a batch's entries after the ledger insert: the first entry
// of each token the insert returned is fresh (res.Fresh); the others were
// applied before, or are a second copy of a fresh entry in this very batch
// (res.Seen: acknowledge them), or were recorded as failed (res.SeenFailed:
// dead-letter them). Outcomes are looked up only when some entry is not
// fresh, which happens after a crash.
func classify(ctx context.Context, q querier, entries []Entry, first map[string]int, isFresh map[string]bool, res *Applied) error {
	var seen []string
	for i, e := range entries {
		if first[e.Token] == i && isFresh[e.Token] {
			res.Fresh = append(res.Fresh, i)
		} else if !isFresh[e.Token] {
			seen = append(seen, e.Token)
		}
	}
	outcomes := map[string]byte{}
	recorded := map[string]string{} // token -> the entry ID the ledger holds it under
	if len(seen) > 0 {
		rows, err := q.Query(ctx, `SELECT token, outcome::text, entry_id FROM applied_entries WHERE token = ANY($1)`, seen)
		if err != nil {
			return fmt.Errorf("store: ledger lookup: %w", err)
		}
		for rows.Next() {
			var t, o, id string
			if err := rows.Scan(&t, &o, &id); err != nil {
				rows.Close()
				return fmt.Errorf("store: ledger lookup: scan: %w", err)
			}
			outcomes[t], recorded[t] = o[0], id
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: ledger lookup: %w", err)
		}
	}
	for i, e := range entries {
		if first[e.Token] == i && isFresh[e.Token] {
			continue
		}
		if outcomes[e.Token] == 'f' {
			res.SeenFailed = append(res.SeenFailed, i)
			continue
		}
		res.Seen = append(res.Seen, i)
		if id, ok := recorded[e.Token]; ok && id != e.EntryID || !ok && entries[first[e.Token]].EntryID != e.EntryID {
			res.Twice = append(res.Twice, i)
		}
	}
	return nil
}

// splitFirsts returns the first copy of each key, sorted by key, and the
// later copies.
func splitFirsts(rows []copyRow) (firsts, dups []copyRow) {
	seen := make(map[event.Key]struct{}, len(rows))
	for _, r := range rows {
		k := r.ev.Key()
		if _, ok := seen[k]; ok {
			dups = append(dups, r)
			continue
		}
		seen[k] = struct{}{}
		firsts = append(firsts, r)
	}
	slices.SortFunc(firsts, func(a, b copyRow) int {
		return cmp.Or(cmp.Compare(a.ev.Topic, b.ev.Topic), cmp.Compare(a.ev.EventID, b.ev.EventID))
	})
	return firsts, dups
}

// eventColumns are the columns of the dropped and failed rows, as arrays
// for unnest.
type eventColumns struct {
	topics, ids, sources, entryIDs []string
	received, queued               []time.Time
}

func columns(rows []copyRow) eventColumns {
	n := len(rows)
	c := eventColumns{
		topics: make([]string, n), ids: make([]string, n), sources: make([]string, n), entryIDs: make([]string, n),
		received: make([]time.Time, n), queued: make([]time.Time, n),
	}
	for i, r := range rows {
		c.topics[i], c.ids[i], c.sources[i], c.entryIDs[i] = r.ev.Topic, r.ev.EventID, r.ev.Source, r.entry.EntryID
		c.received[i], c.queued[i] = r.entry.ReceivedAt, r.entry.QueuedAt
	}
	return c
}

// insertFirsts runs the dedup statement insert on the first copies and
// returns the keys it inserted.
func insertFirsts(ctx context.Context, tx pgx.Tx, worker string, firsts []copyRow, insert insertStep) (map[event.Key]bool, error) {
	inserted := make(map[event.Key]bool, len(firsts))
	if len(firsts) == 0 {
		return inserted, nil
	}
	rows, err := insert(ctx, tx, worker, firsts)
	if err != nil {
		return nil, fmt.Errorf("store: insert %d events: %w", len(firsts), err)
	}
	for rows.Next() {
		var k event.Key
		if err := rows.Scan(&k.Topic, &k.EventID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: insert events: scan: %w", err)
		}
		inserted[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: insert %d events: %w", len(firsts), err)
	}
	return inserted, nil
}

// copyTable is a per-session temporary table the copy method stages rows in.
const copyTable = "batch_in"

const createCopyTable = `CREATE TEMP TABLE IF NOT EXISTS batch_in (
	topic text COLLATE "C", event_id text COLLATE "C", source text, ts timestamptz, payload jsonb,
	received_at timestamptz, queued_at timestamptz, entry_id text) ON COMMIT DELETE ROWS`

func (s *Store) insertViaCopy(ctx context.Context, tx pgx.Tx, worker string, firsts []copyRow) (pgx.Rows, error) {
	if _, err := tx.Exec(ctx, createCopyTable); err != nil {
		return nil, fmt.Errorf("create staging table: %w", err)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{copyTable},
		[]string{"topic", "event_id", "source", "ts", "payload", "received_at", "queued_at", "entry_id"},
		pgx.CopyFromSlice(len(firsts), func(i int) ([]any, error) {
			r := firsts[i]
			return []any{r.ev.Topic, r.ev.EventID, r.ev.Source, r.ev.Timestamp, r.ev.Payload, r.entry.ReceivedAt, r.entry.QueuedAt, r.entry.EntryID}, nil
		}))
	if err != nil {
		return nil, fmt.Errorf("copy into staging table: %w", err)
	}
	return tx.Query(ctx, `
		INSERT INTO events (topic, event_id, source, ts, payload, received_at, queued_at, stored_at, worker_id, entry_id)
		SELECT topic, event_id, source, ts, payload, received_at, queued_at, clock_timestamp(), $1, entry_id
		FROM `+copyTable+`
		ORDER BY topic, event_id
		ON CONFLICT (topic, event_id) DO NOTHING
		RETURNING topic, event_id`, worker)
}

func queueDropped(b *pgx.Batch, worker string, dups []copyRow) {
	if len(dups) == 0 {
		return
	}
	c := columns(dups)
	b.Queue(`
		INSERT INTO dropped (topic, event_id, source, received_at, queued_at, dropped_at, worker_id, entry_id)
		SELECT topic, event_id, source, received_at, queued_at, clock_timestamp(), $1, entry_id
		FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[])
			AS u(topic, event_id, source, received_at, queued_at, entry_id)`,
		worker, c.topics, c.ids, c.sources, c.received, c.queued, c.entryIDs)
}

type topicCount struct{ processed, dropped, failed int64 }

func counts(firsts []copyRow, inserted map[event.Key]bool, dups []copyRow) map[string]*topicCount {
	per := map[string]*topicCount{}
	get := func(t string) *topicCount {
		c := per[t]
		if c == nil {
			c = &topicCount{}
			per[t] = c
		}
		return c
	}
	for _, r := range firsts {
		if inserted[r.ev.Key()] {
			get(r.ev.Topic).processed++
		}
	}
	for _, r := range dups {
		get(r.ev.Topic).dropped++
	}
	return per
}

func queueCounterRows(b *pgx.Batch, worker string, per map[string]*topicCount) {
	if len(per) == 0 {
		return
	}
	topics := make([]string, 0, len(per))
	for t := range per {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	p, d, f := make([]int64, len(topics)), make([]int64, len(topics)), make([]int64, len(topics))
	for i, t := range topics {
		p[i], d[i], f[i] = per[t].processed, per[t].dropped, per[t].failed
	}
	b.Queue(`
		INSERT INTO counters (worker_id, topic, processed, dropped, failed)
		SELECT $1, t, p, d, f FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(t, p, d, f)
		ORDER BY t
		ON CONFLICT (worker_id, topic) DO UPDATE SET
			processed = counters.processed + excluded.processed,
			dropped = counters.dropped + excluded.dropped,
			failed = counters.failed + excluded.failed`,
		worker, topics, p, d, f)
}

// Failure is a stream entry given up on: its events (nil when unreadable)
// and why.
type Failure struct {
	Entry
	Reason string
}

// RecordFailure records a dead-lettered entry once: in the ledger (outcome
// failed), a FAILED audit row per event (one row with empty key when its
// events are unreadable) and the failed counters. It reports false when the
// ledger already had the entry (nothing changed).
func (s *Store) RecordFailure(ctx context.Context, worker string, f Failure) (bool, error) {
	return s.recordFailure(ctx, worker, f, s.claimLedger)
}

// recordFailure is RecordFailure with its ledger step.
func (s *Store) recordFailure(ctx context.Context, worker string, f Failure, ledger ledgerStep) (bool, error) {
	var fresh bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var res Applied
		idx, err := ledger(ctx, tx, []Entry{f.Entry}, 'f', &res)
		if err != nil {
			return err
		}
		fresh = len(idx) == 1
		if !fresh {
			return nil
		}
		evs := f.Events
		if len(evs) == 0 {
			evs = []event.Event{{}} // one FAILED row for an unreadable entry
		}
		rows := make([]copyRow, len(evs))
		per := map[string]*topicCount{}
		for i := range evs {
			rows[i] = copyRow{ev: &evs[i], entry: &f.Entry}
			c := per[evs[i].Topic]
			if c == nil {
				c = &topicCount{}
				per[evs[i].Topic] = c
			}
			c.failed++
		}
		c := columns(rows)
		b := &pgx.Batch{}
		b.Queue(`
			INSERT INTO failed (topic, event_id, source, received_at, queued_at, failed_at, worker_id, entry_id, reason)
			SELECT topic, event_id, source, received_at, queued_at, clock_timestamp(), $1, entry_id, $8
			FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[])
				AS u(topic, event_id, source, received_at, queued_at, entry_id)`,
			worker, c.topics, c.ids, c.sources, c.received, c.queued, c.entryIDs, f.Reason)
		queueCounterRows(b, worker, per)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("store: record failure of %s: %w", f.EntryID, err)
		}
		return nil
	})
	return fresh, err
}
