package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/metrics"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// LogLedgerPruned is what the pruner logs after a pass that deleted rows.
const LogLedgerPruned = "ledger pruned"

// Horizon is what the pruner needs of the queue: *queue.Queue. It returns
// the time of the oldest entry that can still be delivered.
type Horizon interface {
	LedgerHorizon(ctx context.Context) (time.Time, error)
}

// Ledger is what the pruner needs of the store: *store.Store.
type Ledger interface {
	PruneLedger(ctx context.Context, before time.Time, limit int) (int64, error)
}

var (
	_ Horizon = (*queue.Queue)(nil)
	_ Ledger  = (*store.Store)(nil)
)

// PruneConfig configures a Pruner.
type PruneConfig struct {
	// Retention (LEDGER_RETENTION) is the margin kept before the oldest
	// entry that can still be delivered: it covers a second copy of one
	// append (a command the Redis client retried after its first attempt
	// took effect), appended seconds after the first with the same token.
	Retention time.Duration
	Interval  time.Duration // LEDGER_PRUNE_INTERVAL: time between passes
	Batch     int           // rows deleted per statement (default 1000)
}

// Pruner deletes, in the background, the ledger rows that can no longer
// matter: a ledger row is needed only while an entry with its token can be
// delivered, and every such entry is at or after the queue's horizon (the
// oldest entry still in the stream or pending). A pass deletes the rows
// older than the horizon less Retention, in small statements of Batch rows
// (each its own short transaction), until none is left. Start it once;
// Stop it once.
type Pruner struct {
	cfg PruneConfig
	h   Horizon
	st  Ledger
	m   *metrics.Metrics
	log *slog.Logger

	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has returned
}

// NewPruner returns a pruner; nothing runs until Start.
func NewPruner(cfg PruneConfig, h Horizon, st Ledger, m *metrics.Metrics, log *slog.Logger) *Pruner {
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	return &Pruner{cfg: cfg, h: h, st: st, m: m, log: log, done: make(chan struct{})}
}

// Start runs a pass now and then one every Interval, until Stop.
func (p *Pruner) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.cfg.Interval)
		defer t.Stop()
		for {
			if _, err := p.Prune(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("ledger prune failed, retrying at the next pass", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the loop (a statement in flight is cancelled: it deletes
// nothing or its whole batch) and waits for it.
func (p *Pruner) Stop() {
	p.cancel()
	<-p.done
}

// Prune is one pass: it reads the horizon, then deletes the rows older than
// the horizon less Retention, batch by batch. It returns the rows deleted.
func (p *Pruner) Prune(ctx context.Context) (int64, error) {
	h, err := p.h.LedgerHorizon(ctx)
	if err != nil {
		return 0, err
	}
	before := h.Add(-p.cfg.Retention)
	var total int64
	defer func() {
		p.m.LedgerPrunePasses.Inc()
		if total > 0 {
			p.m.LedgerPruned.Add(float64(total))
			p.log.Info(LogLedgerPruned, "rows", total, "before", before, "horizon", h)
		}
	}()
	for {
		n, err := p.st.PruneLedger(ctx, before, p.cfg.Batch)
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(p.cfg.Batch) {
			return total, nil
		}
	}
}
