package store

import (
	"context"
	"fmt"
	"time"
)

// PruneLedger deletes at most limit ledger rows whose stream entry ID is
// older than before (by the millisecond part of the ID, Redis's clock) and
// returns how many it deleted. Each call is one short statement of its own:
// it locks only the rows it deletes, skipping rows another pruner holds, so
// it never blocks the workers' ledger inserts (they write newer tokens).
//
// The caller chooses before: no entry with an ID older than before may
// ever be delivered again (worker.Pruner: older than the oldest entry still
// in the stream, less LEDGER_RETENTION). A row deleted while an entry it
// covers can still be delivered re-opens a duplicate.
func (s *Store) PruneLedger(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM applied_entries WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM applied_entries
			WHERE ledger_entry_ms(entry_id) < $1
			LIMIT $2
			FOR UPDATE SKIP LOCKED))`, before.UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("store: prune ledger before %s: %w", before.UTC().Format(time.RFC3339Nano), err)
	}
	return tag.RowsAffected(), nil
}

// LedgerRows counts the ledger's rows (for tests and operators).
func (s *Store) LedgerRows(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM applied_entries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count ledger rows: %w", err)
	}
	return n, nil
}
