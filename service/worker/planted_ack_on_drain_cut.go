//go:build plantedbugs

package worker

import (
	"context"
	"errors"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// AckOnDrainCut is the planted bug ack-on-drain-cut, a negative control
// (see service/planted): a Store whose commit step, when the pool is
// stopped (SHUTDOWN_TIMEOUT ran out) while a batch could not be applied,
// acknowledges the batch on Queue anyway, "so that the next start does not
// apply it twice". The batch never committed: it is lost. Only a drain that
// runs out of time while PostgreSQL is unreachable exposes it; the store
// and the queue are the production ones.
type AckOnDrainCut struct {
	Store
	Queue Queue
}

// ApplyBatch applies entries; when that fails because the pool is stopping
// (its context cancelled, not a batch timeout), it acknowledges them.
func (s AckOnDrainCut) ApplyBatch(ctx context.Context, worker string, entries []store.Entry) (store.Applied, error) {
	res, err := s.Store.ApplyBatch(ctx, worker, entries)
	if err == nil || !errors.Is(ctx.Err(), context.Canceled) {
		return res, err
	}
	qs := make([]queue.Entry, len(entries))
	for i, e := range entries {
		qs[i] = queue.Entry{ID: e.EntryID, Token: e.Token, Count: len(e.Events)}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_, _ = s.Queue.Ack(actx, qs)
	return res, err
}
