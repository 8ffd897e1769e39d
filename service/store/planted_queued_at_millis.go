//go:build plantedbugs

package store

import (
	"context"
	"time"
)

// QueuedAtMillis is the planted bug queued-at-millis, a negative control
// (see service/planted): the apply keeps an entry's queue time to the
// millisecond (as the stream entry ID gives it) while its receive time
// keeps microseconds, so an event received and queued within one
// millisecond lists its QUEUED below its RECEIVED in /audit, newest first.
// Everything else is the Store's own.
type QueuedAtMillis struct{ *Store }

// ApplyBatch is Store.ApplyBatch with each queue time cut to the millisecond.
func (s QueuedAtMillis) ApplyBatch(ctx context.Context, worker string, entries []Entry) (Applied, error) {
	cut := make([]Entry, len(entries))
	for i, e := range entries {
		e.QueuedAt = e.QueuedAt.Truncate(time.Millisecond)
		cut[i] = e
	}
	return s.Store.ApplyBatch(ctx, worker, cut)
}
