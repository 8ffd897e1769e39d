package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// PruneLedger deletes, in batches of at most limit rows, the ledger rows
// whose stream entry ID is older than the cutoff, and nothing else; a
// token pruned is forgotten (which is why the cutoff must be older than
// anything that can still be delivered: worker.Pruner's horizon).
func TestPruneLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t, store.MethodUnnest)
	ids := []string{"1000-0", "1999-7", "2000-0", "3000-5"}
	for i, id := range ids {
		e := mkEntry("tok-"+id, mkEv("t", id, "m"))
		e.EntryID = id
		if i == 3 {
			// A failed entry's row goes the same way.
			if _, err := st.RecordFailure(ctx, "w", store.Failure{Entry: e, Reason: "test"}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := st.ApplyBatch(ctx, "w", []store.Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() int64 {
		n, err := st.LedgerRows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cut := time.UnixMilli(2000)
	for _, want := range []int64{1, 1, 0} { // limit 1: one row per call, until none is older
		n, err := st.PruneLedger(ctx, cut, 1)
		if err != nil || n != want {
			t.Fatalf("PruneLedger(%v, 1) = %d, %v; want %d", cut, n, err, want)
		}
	}
	if n := rows(); n != 2 {
		t.Fatalf("%d ledger rows left, want 2 (2000-0 and 3000-5)", n)
	}
	// The rows kept still recognise their entries.
	kept := mkEntry("tok-2000-0", mkEv("t", "2000-0", "m"))
	kept.EntryID = "2000-0"
	res, err := st.ApplyBatch(ctx, "w", []store.Entry{kept})
	if err != nil || len(res.Seen) != 1 {
		t.Fatalf("redelivery of a kept entry: %+v, %v; want it seen", res, err)
	}
	// A pruned token is forgotten: its entry would be applied again.
	gone := mkEntry("tok-1000-0", mkEv("t", "1000-0", "m"))
	gone.EntryID = "1000-0"
	res, err = st.ApplyBatch(ctx, "w", []store.Entry{gone})
	if err != nil || len(res.Fresh) != 1 || res.Dropped != 1 {
		t.Fatalf("redelivery of a pruned entry: %+v, %v; want it fresh, its event a duplicate", res, err)
	}
	if n, err := st.PruneLedger(ctx, time.UnixMilli(1<<40), 1000); err != nil || n != 3 {
		t.Fatalf("prune all: %d, %v; want 3", n, err)
	}
	if n := rows(); n != 0 {
		t.Fatalf("%d ledger rows left, want 0", n)
	}
}
