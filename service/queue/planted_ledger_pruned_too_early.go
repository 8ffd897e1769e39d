//go:build plantedbugs

package queue

import (
	"context"
	"fmt"
	"time"
)

// LedgerPrunedTooEarly is the planted bug ledger-pruned-too-early, a
// negative control (see service/planted): the ledger pruner's horizon
// ignores the stream ("LEDGER_RETENTION after the apply is long enough"),
// so the ledger rows of entries still pending (committed, not yet
// acknowledged when their consumer died) can be pruned before they are
// redelivered: the redelivery is applied and counted again. Every other
// method is the Queue's own.
type LedgerPrunedTooEarly struct{ *Queue }

// LedgerHorizon is Redis's current time, whatever the stream still holds.
func (q LedgerPrunedTooEarly) LedgerHorizon(ctx context.Context) (time.Time, error) {
	t, err := q.rdb.Time(ctx).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("queue: redis time: %w", err)
	}
	return t.Truncate(time.Millisecond), nil
}
