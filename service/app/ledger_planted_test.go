//go:build plantedbugs

package app_test

import (
	"testing"

	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// The planted bug ledger-pruned-too-early (the pruner ignores the entries
// still pending) is caught by the scenario of TestLedgerPruneAroundRedelivery:
// the dead consumer's entries lose their ledger rows before their claim,
// and the claim applies and counts them again.
func TestLedgerPruneCatchesPrunedTooEarly(t *testing.T) {
	t.Parallel()
	o := pruneAroundRedelivery(t, planted.LedgerPrunedTooEarly)
	v := o.exact()
	mustf(t, v != "", "planted bug %s not caught: stats %+v exact", planted.LedgerPrunedTooEarly, o.stats)
	t.Logf("caught: %s", v)
}
