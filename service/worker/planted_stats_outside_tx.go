//go:build plantedbugs

package worker

import (
	"context"
	"log/slog"

	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// CountersAfterAck is the worker's half of the planted bug
// stats-outside-tx, a negative control (see service/planted; the store's
// half is store.StatsOutsideTx, which leaves the counters out of the
// batch's transaction): a Queue whose acknowledge step, once the entries
// are acknowledged, has Store write the counters it kept for them, in a
// transaction of their own. A crash between the two loses the counters.
type CountersAfterAck struct {
	Queue
	Store *store.StatsOutsideTx
	Log   *slog.Logger
}

// Ack acknowledges entries, then writes their batch's counters once; a
// failure to write them is logged and the counters are lost.
func (q CountersAfterAck) Ack(ctx context.Context, entries []queue.Entry) (int, error) {
	n, err := q.Queue.Ack(ctx, entries)
	if err != nil {
		return n, err
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	if err := q.Store.ApplyCounters(ctx, ids); err != nil {
		q.Log.Warn("counters update failed", "err", err)
	}
	return n, nil
}
