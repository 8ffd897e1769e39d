//go:build plantedbugs

package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// StatsOutsideTx is the store's half of the planted bug stats-outside-tx, a
// negative control (see service/planted): ApplyBatch leaves the counter
// updates out of the batch's transaction and keeps them; ApplyCounters
// writes them in a transaction of their own, and is called once the worker
// has acknowledged the entries (service/app wires it after the worker's
// acknowledge step). A crash between the acknowledgement and the counters
// loses them for good: the stats fall short of the stored rows. The rest is
// the copy method's apply (the one built of separate statements), with only
// the counters step exchanged.
type StatsOutsideTx struct {
	*Store

	mu       sync.Mutex
	deferred map[string]*deferredCounters // by stream entry ID of a batch's fresh entries; guarded by mu
}

type deferredCounters struct {
	worker string
	per    map[string]*topicCount
	taken  bool // by ApplyCounters; guarded by StatsOutsideTx.mu
}

// NewStatsOutsideTx returns st with the counters left out of its batches.
func NewStatsOutsideTx(st *Store) *StatsOutsideTx {
	return &StatsOutsideTx{Store: st, deferred: map[string]*deferredCounters{}}
}

// ApplyBatch is the copy method's apply without its counters step; the
// counters wait for ApplyCounters with the entries' IDs.
func (s *StatsOutsideTx) ApplyBatch(ctx context.Context, worker string, entries []Entry) (Applied, error) {
	var per map[string]*topicCount
	st := s.copySteps()
	st.counters = func(_ *pgx.Batch, _ string, p map[string]*topicCount) { per = p }
	res, err := s.applySteps(ctx, worker, entries, st)
	if err != nil || len(per) == 0 {
		return res, err
	}
	d := &deferredCounters{worker: worker, per: per}
	s.mu.Lock()
	for _, i := range res.Fresh {
		s.deferred[entries[i].EntryID] = d
	}
	s.mu.Unlock()
	return res, nil
}

// ApplyCounters writes the counters kept for the batches of the entries
// with these stream IDs, each batch's in a transaction of its own, once:
// a failure drops them.
func (s *StatsOutsideTx) ApplyCounters(ctx context.Context, entryIDs []string) error {
	var todo []*deferredCounters
	s.mu.Lock()
	for _, id := range entryIDs {
		d, ok := s.deferred[id]
		if !ok {
			continue
		}
		delete(s.deferred, id)
		if !d.taken {
			d.taken = true
			todo = append(todo, d)
		}
	}
	s.mu.Unlock()
	for _, d := range todo {
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			queueCounterRows(b, d.worker, d.per)
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil {
			return fmt.Errorf("store: counters: %w", err)
		}
	}
	return nil
}
