//go:build plantedbugs

package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// LedgerByEntryID is the planted bug ledger-by-entry-id, a negative control
// (see service/planted): the ledger keys on the stream entry ID instead of
// the token the publish path gave the entry. A redelivered entry (same ID)
// is still recognised, but a second copy of one append, written when the
// Redis client retried a command whose first attempt had taken effect, has
// an ID of its own: it is applied again and its events counted twice. The
// rest is the copy method's apply, with only the ledger step exchanged, in
// ApplyBatch and RecordFailure alike.
type LedgerByEntryID struct{ *Store }

// ApplyBatch is the copy method's apply with the entry-ID ledger step.
func (s LedgerByEntryID) ApplyBatch(ctx context.Context, worker string, entries []Entry) (Applied, error) {
	st := s.copySteps()
	st.ledger = s.ledgerByEntryID
	return s.applySteps(ctx, worker, entries, st)
}

// RecordFailure is Store.RecordFailure with the entry-ID ledger step.
func (s LedgerByEntryID) RecordFailure(ctx context.Context, worker string, f Failure) (bool, error) {
	return s.recordFailure(ctx, worker, f, s.ledgerByEntryID)
}

// ledgerByEntryID is the ledger step keyed on each entry's stream ID.
func (s LedgerByEntryID) ledgerByEntryID(ctx context.Context, tx pgx.Tx, entries []Entry, outcome byte, res *Applied) ([]int, error) {
	keyed := make([]Entry, len(entries))
	for i, e := range entries {
		keyed[i] = e
		keyed[i].Token = e.EntryID
	}
	return s.claimLedger(ctx, tx, keyed, outcome, res)
}
