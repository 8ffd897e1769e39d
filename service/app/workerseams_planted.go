//go:build plantedbugs

package app

import (
	"context"
	"fmt"

	"github.com/chronicleweaver/chronicleweaver/service/planted"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
	"github.com/chronicleweaver/chronicleweaver/service/worker"
)

// workerSeams returns the queue and the store the workers use: the
// production ones, except that the planted bug selected by
// CHRONICLE_PLANTED_BUG (a negative control, see service/planted) replaces
// the one it lives in. Nothing else in the service knows the bug exists.
func (m *Main) workerSeams(ctx context.Context) (worker.Queue, worker.Store, error) {
	bug := m.Config.PlantedBug
	if err := planted.Check(bug); err != nil {
		return nil, nil, err
	}
	var q worker.Queue = m.queue
	var st worker.Store = m.store
	switch bug {
	case "":
		return q, st, nil
	case planted.AckBeforeCommit: // the commit step acknowledges first
		st = worker.AckBeforeCommit{Store: m.store, Queue: m.queue}
	case planted.PopAndForget: // the read step takes entries off the stream
		q = queue.PopAndForget{Queue: m.queue}
	case planted.StatsOutsideTx: // the commit step leaves the counters to the acknowledge step
		sot := store.NewStatsOutsideTx(m.store)
		st = sot
		q = worker.CountersAfterAck{Queue: m.queue, Store: sot, Log: m.Log}
	case planted.SelectThenInsert: // the dedup statement, without a unique key
		sti := store.SelectThenInsert{Store: m.store}
		if err := sti.DropUniqueKey(ctx); err != nil {
			return nil, nil, err
		}
		st = sti
	case planted.NoLedger: // the ledger step remembers nothing
		st = store.NoLedger{Store: m.store}
	case planted.LedgerByEntryID: // the ledger step keys on the entry ID
		st = store.LedgerByEntryID{Store: m.store}
	case planted.DedupEventID: // the dedup statement, keyed on event_id alone
		st = store.DedupEventID{Store: m.store}
	case planted.QueuedAtMillis: // the apply step cuts the queue time to the millisecond
		st = store.QueuedAtMillis{Store: m.store}
	case planted.AckOnDrainCut: // the commit step acknowledges what a cut-short drain abandons
		st = worker.AckOnDrainCut{Store: m.store, Queue: m.queue}
	case planted.DiskFullIgnored: // the commit step takes disk_full for committed
		st = store.DiskFullIgnored{Store: m.store}
	case planted.PublishOKOnTimeout, planted.IdempotencyForgotten, planted.PublishOKOnDiskError:
		// The publish path's queue (publishSeam); the workers' are the
		// production ones.
	case planted.ArraysUnchecked:
		// The publish path's request decoder (decodeSeam); the workers'
		// are the production ones.
	case planted.DeliveriesUncounted: // the workers' pending list without delivery counts
		q = queue.DeliveriesUncounted{Queue: m.queue}
	case planted.LedgerPrunedTooEarly:
		// The ledger pruner's horizon (horizonSeam); the workers' are the
		// production ones.
	case planted.RedisNoAOF:
		// The harness starts Redis without its append-only file; the
		// service is the production one.
	case planted.Unbounded422, planted.NumbersPrintLarge, planted.QueryUnchecked,
		planted.PublishAnyContentType, planted.EventsPageUnbounded, planted.StatsTopicsUnbounded:
		// The HTTP edge's guards (apiSeam); the workers' are the
		// production ones.
	case planted.ReadsUnlimited, planted.QueueBytesUnbounded, planted.SniffableAnswers:
		// The HTTP edge's read and queue bounds (apiSeam).
	case planted.MemoryLimitIgnored, planted.ConnectionsUnbounded:
		// The runtime's memory limit (memorySeam) and the listener
		// (listenerSeam); the workers' are the production ones.
	default:
		return nil, nil, fmt.Errorf("app: planted bug %q has no seam in this build", bug)
	}
	m.Log.Warn("PLANTED BUG ACTIVE: this instance is a negative control", "bug", bug)
	return q, st, nil
}

// horizonSeam returns the queue the ledger pruner reads its horizon from:
// the production one, or, under ledger-pruned-too-early, one that ignores
// the entries still pending.
func (m *Main) horizonSeam() worker.Horizon {
	if m.Config.PlantedBug == planted.LedgerPrunedTooEarly {
		return queue.LedgerPrunedTooEarly{Queue: m.queue}
	}
	return m.queue
}
