//go:build plantedbugs

package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// NoLedger is the planted bug no-ledger, a negative control (see
// service/planted): the ledger step records nothing and takes every entry
// as fresh, so a redelivered entry (committed, not acknowledged before a
// crash or a claim) is applied again and its events are counted twice. The
// rest is the copy method's apply (the one built of separate statements),
// with only the ledger step exchanged, in ApplyBatch and RecordFailure alike.
type NoLedger struct{ *Store }

// ApplyBatch is the copy method's apply with noLedger as its ledger step.
func (s NoLedger) ApplyBatch(ctx context.Context, worker string, entries []Entry) (Applied, error) {
	st := s.copySteps()
	st.ledger = noLedger
	return s.applySteps(ctx, worker, entries, st)
}

// RecordFailure is Store.RecordFailure with noLedger as its ledger step.
func (s NoLedger) RecordFailure(ctx context.Context, worker string, f Failure) (bool, error) {
	return s.recordFailure(ctx, worker, f, noLedger)
}

// noLedger is a ledger step that remembers nothing: every entry is fresh.
func noLedger(_ context.Context, _ pgx.Tx, entries []Entry, _ byte, res *Applied) ([]int, error) {
	fresh := make([]int, len(entries))
	for i := range entries {
		fresh[i] = i
	}
	res.Fresh = fresh
	return fresh, nil
}
