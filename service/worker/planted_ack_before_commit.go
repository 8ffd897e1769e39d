//go:build plantedbugs

package worker

import (
	"context"

	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// AckBeforeCommit is the planted bug ack-before-commit, a negative control
// (see service/planted): a Store whose commit step first acknowledges the
// batch's entries on Queue (XACK) and only then applies them, so a crash in
// between loses the batch. The worker acknowledges them again after the
// commit, which changes nothing; the store and the queue are the
// production ones.
type AckBeforeCommit struct {
	Store
	Queue Queue
}

// ApplyBatch acknowledges entries, then applies them. A failed
// acknowledgement is returned as a transient error: the worker retries.
func (s AckBeforeCommit) ApplyBatch(ctx context.Context, worker string, entries []store.Entry) (store.Applied, error) {
	qs := make([]queue.Entry, len(entries))
	for i, e := range entries {
		qs[i] = queue.Entry{ID: e.EntryID, Token: e.Token, Count: len(e.Events)}
	}
	if _, err := s.Queue.Ack(ctx, qs); err != nil {
		return store.Applied{}, err
	}
	return s.Store.ApplyBatch(ctx, worker, entries)
}
