package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// TestGrowthPerEntry measures what one applied entry adds to each table
// (pg_total_relation_size: heap, indexes and TOAST) over n entries of one
// event each, every other one a duplicate, for the README's "What grows"
// section (go test ./service/store -run TestGrowthPerEntry -v). It also
// checks that a pruning batch finds its rows through the ledger's index.
func TestGrowthPerEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 20,000 entries")
	}
	t.Parallel()
	ctx := context.Background()
	st := newStore(t, store.MethodUnnest)
	const n = 20_000
	var batch []store.Entry
	for i := range n {
		id := fmt.Sprintf("e%07d", i/2) // two copies of each event: one row in events, one in dropped
		batch = append(batch, mkEntry(fmt.Sprintf("tok-%07d", i), mkEv("orders", id, "a message of about forty bytes, typical")))
		if len(batch) == 500 {
			if _, err := st.ApplyBatch(ctx, "w", batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	db := st.Pool()
	if _, err := db.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		t.Fatal(err)
	}
	size := func(table string) float64 {
		var b, rows int64
		q := fmt.Sprintf("SELECT pg_total_relation_size('%s'), (SELECT count(*) FROM %s)", table, table)
		if err := db.QueryRow(ctx, q).Scan(&b, &rows); err != nil {
			t.Fatal(err)
		}
		per := float64(b) / float64(rows)
		t.Logf("%-15s %6d rows %9d bytes  %5.0f B/row", table, rows, b, per)
		return per
	}
	ledger, events, dropped := size("applied_entries"), size("events"), size("dropped")
	if ledger < 50 || ledger > 400 {
		t.Errorf("ledger row %.0f B, want 50..400", ledger)
	}
	if events < dropped || dropped < 50 {
		t.Errorf("events row %.0f B, dropped row %.0f B: an events row holds the payload, a dropped row does not", events, dropped)
	}
	rows, err := db.Query(ctx, `EXPLAIN SELECT ctid FROM applied_entries WHERE ledger_entry_ms(entry_id) < 1000 LIMIT 1000`)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	t.Logf("prune plan:\n%s", plan)
	if !strings.Contains(plan, "applied_entries_by_ms") {
		t.Errorf("the prune batch does not use the ledger's index: %s", plan)
	}
}
