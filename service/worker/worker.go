// Package worker runs the consumers that move entries from the queue into
// the store: read a batch, apply it in one transaction, then acknowledge.
//
// A crash at any point is safe: an entry is acknowledged only after the
// transaction that applied it (and recorded its token in the ledger)
// committed, and a redelivered entry is recognised by the ledger. An entry
// whose processing itself crashes the process is dead-lettered once Redis
// counts MaxDeliveries deliveries of it (recoverOwn); the Pruner deletes
// the ledger rows no entry that can still be delivered needs.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/metrics"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// Config configures a Pool.
type Config struct {
	Instance  string // consumer names are Instance-0 .. Instance-(Count-1)
	Count     int    // WORKER_COUNT
	BatchSize int    // entries per read, at most
	// BatchEvents bounds the events of one batch: a read asks for as many
	// entries as fit, judging by the events per entry seen so far (an entry
	// holds one request). 0: no bound beyond BatchSize.
	BatchEvents int
	ClaimIdle   time.Duration // claim other consumers' entries idle this long
	MaxAttempts int           // data failures of one entry before it is dead-lettered
	Block       time.Duration // how long a read waits for new entries (default 1s)
	// Linger: when a read returns less than a full batch, wait this long
	// and top the batch up before applying it. Fewer, larger transactions
	// cost PostgreSQL less per event; the price is Linger of latency.
	Linger time.Duration
	// BatchTimeout bounds one attempt at a batch transaction (0: none). A
	// paused or silently unreachable PostgreSQL cannot enforce its
	// statement_timeout; past this the attempt is abandoned (its connection
	// closed) and the batch retried. The abandoned attempt may still
	// commit: the retry then finds its entries in the ledger.
	BatchTimeout time.Duration
	// MaxDeliveries (MAX_DELIVERIES) bounds the deliveries of one entry
	// without an acknowledgement: a pending entry delivered that often
	// (Redis's delivery counter) is dead-lettered when it comes back, as an
	// entry whose processing kills the process would otherwise come back
	// forever. 0: DefaultMaxDeliveries.
	MaxDeliveries int
}

// Messages the workers log when a fault leaves a trace (the harness counts
// them to check that a scenario's fault had its effect).
const (
	LogBatchRetry     = "batch failed, retrying"
	LogBatchTimeout   = "batch timed out, retrying"
	LogOwnPending     = "recovering own pending entries"
	LogClaimed        = "claimed idle entries"
	LogAlreadyApplied = "entries already applied, acknowledged without applying them again"
	LogAppendedTwice  = "entries appended twice by a retried append, applied once"
	LogCrashLoop      = "entry delivered too often without an acknowledgement, dead-lettering it"
	LogDiskFull       = "postgres disk full: batches cannot be applied until space is freed"
)

// DefaultMaxDeliveries is Config.MaxDeliveries when unset.
const DefaultMaxDeliveries = 20

// Queue is what a worker needs of the queue: *queue.Queue. Read is the
// read step (new entries stay pending until acknowledged) and Ack the
// acknowledge step (only after the commit).
type Queue interface {
	Read(ctx context.Context, consumer string, count int, block time.Duration) ([]queue.Entry, error)
	Pending(ctx context.Context, consumer, after string, count int) ([]queue.Pending, error)
	Redeliver(ctx context.Context, consumer string, ids []string) ([]queue.Entry, error)
	ClaimIDs(ctx context.Context, consumer string, minIdle time.Duration, start string, count int) ([]string, string, error)
	Ack(ctx context.Context, entries []queue.Entry) (int, error)
	DeadLetter(ctx context.Context, e queue.Entry, reason string) (bool, error)
}

// Store is what a worker needs of the store: *store.Store. ApplyBatch is
// the commit step, one transaction per batch.
type Store interface {
	ApplyBatch(ctx context.Context, worker string, entries []store.Entry) (store.Applied, error)
	RecordFailure(ctx context.Context, worker string, f store.Failure) (bool, error)
}

var (
	_ Queue = (*queue.Queue)(nil)
	_ Store = (*store.Store)(nil)
)

// ConsumerName is the stable name of worker i of an instance, so a restarted
// instance reads its own pending entries first.
func ConsumerName(instance string, i int) string { return fmt.Sprintf("%s-%d", instance, i) }

// Pool is a set of workers. Start it once; Stop it once.
type Pool struct {
	cfg Config
	q   Queue
	st  Store
	m   *metrics.Metrics
	log *slog.Logger

	drain  chan struct{} // closed by Stop: finish the backlog, then exit
	cancel context.CancelFunc
	done   chan struct{} // closed when every worker has returned

	// diskFull is set (written by the workers, read by /ready through
	// Blocked) when a batch transaction was refused for want of disk
	// space, and cleared by the next one that commits.
	diskFull atomic.Bool

	// suspect is held while an entry delivered more than once is
	// delivered again and applied (redeliver): one such entry at a time
	// in the instance, so that when one of them crashes the process, no
	// other suspect entry of another worker was in flight with it and
	// counts a delivery it did not cause.
	suspect chan struct{}
}

// Blocked says why the workers cannot apply anything now ("" when they
// can): PostgreSQL refused the last batch for want of disk space. /ready
// reports it, so that an operator sees why the backlog grows.
func (p *Pool) Blocked() string {
	if p.diskFull.Load() {
		return "postgres disk full: batches refused (SQLSTATE 53100), retrying until space is freed"
	}
	return ""
}

// New returns a pool; nothing runs until Start.
func New(cfg Config, q Queue, st Store, m *metrics.Metrics, log *slog.Logger) *Pool {
	if cfg.Block <= 0 {
		cfg.Block = time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 1
	}
	if cfg.MaxDeliveries <= 0 {
		cfg.MaxDeliveries = DefaultMaxDeliveries
	}
	return &Pool{cfg: cfg, q: q, st: st, m: m, log: log, drain: make(chan struct{}), done: make(chan struct{}),
		suspect: make(chan struct{}, 1)}
}

// Start launches the workers. They run until Stop.
func (p *Pool) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	var wg sync.WaitGroup
	for i := range p.cfg.Count {
		w := &worker{Pool: p, name: ConsumerName(p.cfg.Instance, i), attempts: map[string]int{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	go func() {
		wg.Wait()
		close(p.done)
	}()
}

// Stop drains: workers stop waiting for new entries, apply and acknowledge
// what the stream still holds, and return. When ctx ends first, the batch in
// flight is abandoned unacknowledged (it is redelivered later; nothing is
// lost). Stop returns ctx's error in that case.
func (p *Pool) Stop(ctx context.Context) error {
	close(p.drain)
	select {
	case <-p.done:
		p.cancel()
		return nil
	case <-ctx.Done():
		p.cancel()
		<-p.done
		return fmt.Errorf("worker: drain cut short: %w", ctx.Err())
	}
}

func (p *Pool) draining() bool {
	select {
	case <-p.drain:
		return true
	default:
		return false
	}
}

// worker is one consumer. Its fields are used only by its own goroutine.
type worker struct {
	*Pool
	name     string
	attempts map[string]int // data failures per entry token
	perEntry float64        // events per entry, moving average of the reads so far
}

// want is how many entries the next read asks for, given the events already
// in the batch: BatchSize at most, and about what fits in BatchEvents.
func (w *worker) want(have, haveEvents int) int {
	return entriesFor(w.cfg.BatchSize-have, w.cfg.BatchEvents-haveEvents, w.cfg.BatchEvents > 0, w.perEntry)
}

// entriesFor is want's arithmetic: room entries, or fewer when bounded and
// the events left (roomEvents) fit in fewer entries of perEntry events; at
// least one, so a batch always makes progress.
func entriesFor(room, roomEvents int, bounded bool, perEntry float64) int {
	if bounded && perEntry > 0 {
		room = min(room, int(float64(roomEvents)/perEntry))
	}
	return max(room, 1)
}

// observe folds a read's entries into the events-per-entry average.
func (w *worker) observe(entries []queue.Entry) int {
	n := 0
	for _, e := range entries {
		n += e.Count
	}
	if len(entries) > 0 {
		avg := float64(n) / float64(len(entries))
		if w.perEntry == 0 {
			w.perEntry = avg
		} else {
			w.perEntry = 0.7*w.perEntry + 0.3*avg
		}
	}
	return n
}

func (w *worker) run(ctx context.Context) {
	log := w.log.With("worker", w.name)
	log.Debug("worker started")
	defer log.Debug("worker stopped")

	w.recoverOwn(ctx, LogOwnPending)
	nextClaim := time.Now().Add(w.cfg.ClaimIdle / 2)
	claimFrom := "0-0"
	for fails := 0; ctx.Err() == nil; {
		if time.Now().After(nextClaim) {
			claimFrom = w.claim(ctx, claimFrom)
			nextClaim = time.Now().Add(w.cfg.ClaimIdle / 2)
		}
		block := w.cfg.Block
		if w.draining() {
			block = -1 // do not wait: an empty read means drained
		}
		asked := w.want(0, 0)
		entries, err := w.q.Read(ctx, w.name, asked, block)
		events := w.observe(entries)
		if err == nil && len(entries) > 0 && len(entries) < asked && w.cfg.Linger > 0 && !w.draining() {
			pause(ctx, 0, w.cfg.Linger)
			// A failed top-up read changes nothing: the entries already read
			// are applied now (else they would wait for a claim).
			if more, merr := w.q.Read(ctx, w.name, w.want(len(entries), events), -1); merr == nil {
				w.observe(more)
				entries = append(entries, more...)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("read failed", "err", err)
			fails++
			pause(ctx, fails)
			continue
		}
		fails = 0
		if len(entries) == 0 {
			if w.draining() {
				return
			}
			continue
		}
		w.process(ctx, entries)
	}
}

// recoverOwn applies what this consumer holds pending: what it had read
// and not acknowledged before a crash, or what it has just claimed. It
// logs msg (when not empty) with the number of entries it finds.
//
// Entries come back through their delivery counts (queue.Pending, which
// delivers nothing): delivered once before, they are applied in batches as
// usual; delivered more often, they were in flight at two crashes in a
// row and may be what causes them, so each is delivered and applied alone,
// one at a time in the whole instance (a crashing entry then takes no
// other entry's deliveries with it);
// delivered MaxDeliveries times, the entry is dead-lettered.
func (w *worker) recoverOwn(ctx context.Context, msg string) {
	after := ""
	for fails := 0; ctx.Err() == nil; {
		pend, err := w.q.Pending(ctx, w.name, after, w.want(0, 0))
		if err == nil && len(pend) > 0 {
			if msg != "" {
				w.log.Info(msg, "worker", w.name, "entries", len(pend))
				msg = ""
			}
			err = w.redeliver(ctx, pend)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("recovering pending entries failed", "worker", w.name, "err", err)
			fails++
			pause(ctx, fails)
			continue
		}
		if len(pend) == 0 {
			return
		}
		fails = 0
		after = pend[len(pend)-1].ID
	}
}

// redeliver delivers pending entries to this worker again and applies
// them, or dead-letters those delivered MaxDeliveries times (see recoverOwn).
func (w *worker) redeliver(ctx context.Context, pend []queue.Pending) error {
	var batch, alone []string
	for _, p := range pend {
		switch {
		case p.Deliveries >= int64(w.cfg.MaxDeliveries):
			es, err := w.q.Redeliver(ctx, w.name, []string{p.ID})
			if err != nil {
				return err
			}
			for _, e := range es {
				w.crashLoop(ctx, e, p.Deliveries)
			}
		case p.Deliveries >= 2:
			alone = append(alone, p.ID)
		default:
			batch = append(batch, p.ID)
		}
	}
	if len(batch) > 0 {
		es, err := w.q.Redeliver(ctx, w.name, batch)
		if err != nil {
			return err
		}
		w.observe(es)
		w.process(ctx, es)
	}
	for _, id := range alone {
		if err := w.redeliverAlone(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// redeliverAlone delivers one suspect entry again and applies it, holding
// the pool's suspect slot (see Pool.suspect).
func (w *worker) redeliverAlone(ctx context.Context, id string) error {
	select {
	case w.suspect <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.suspect }()
	es, err := w.q.Redeliver(ctx, w.name, []string{id})
	if err != nil {
		return err
	}
	w.process(ctx, es)
	return nil
}

// crashLoop dead-letters an entry delivered n times without an
// acknowledgement, with its events when they are readable (FAILED audit).
func (w *worker) crashLoop(ctx context.Context, e queue.Entry, n int64) {
	reason := fmt.Sprintf("delivered %d times without an acknowledgement (crash loop?)", n)
	w.log.Error(LogCrashLoop, "worker", w.name, "entry", e.ID, "deliveries", n)
	if e.Deleted {
		w.ack(ctx, []queue.Entry{e})
		return
	}
	var evs []event.Event
	if e.Err == nil {
		if got, err := event.UnmarshalBatch(e.Body); err == nil && len(got) == e.Count {
			evs = got
		}
	}
	w.poison(ctx, e, evs, reason)
}

// claim takes over entries idle in other consumers (a dead instance's)
// without delivering them, and applies them as its own pending entries. It
// returns where the next scan starts.
func (w *worker) claim(ctx context.Context, start string) string {
	ids, next, err := w.q.ClaimIDs(ctx, w.name, w.cfg.ClaimIdle, start, w.want(0, 0))
	if err != nil {
		w.log.Warn("claim failed", "worker", w.name, "err", err)
		return start
	}
	if len(ids) > 0 {
		w.log.Info(LogClaimed, "worker", w.name, "entries", len(ids))
		w.m.Claimed.Add(float64(len(ids)))
		w.recoverOwn(ctx, "")
	}
	return next
}

// process applies a batch read from the queue and acknowledges it.
func (w *worker) process(ctx context.Context, entries []queue.Entry) {
	qs := make([]queue.Entry, 0, len(entries))
	es := make([]store.Entry, 0, len(entries))
	var gone []queue.Entry
	for _, e := range entries {
		if e.Deleted {
			gone = append(gone, e)
			continue
		}
		if e.Err != nil {
			w.poison(ctx, e, nil, e.Err.Error())
			continue
		}
		evs, err := event.UnmarshalBatch(e.Body)
		if err == nil && len(evs) != e.Count {
			err = fmt.Errorf("entry says %d events, holds %d", e.Count, len(evs))
		}
		if err != nil {
			w.poison(ctx, e, nil, "undecodable entry: "+err.Error())
			continue
		}
		qs = append(qs, e)
		es = append(es, store.Entry{Token: e.Token, EntryID: e.ID, ReceivedAt: e.ReceivedAt, QueuedAt: e.QueuedAt(), Events: evs})
	}
	w.ack(ctx, gone)
	if len(es) > 0 {
		w.apply(ctx, qs, es)
	}
}

// apply commits es (the decoded qs) and acknowledges them. Transient errors
// are retried until ctx ends; a batch refused for its data is split, and an
// entry refused MaxAttempts times is dead-lettered.
func (w *worker) apply(ctx context.Context, qs []queue.Entry, es []store.Entry) {
	for fails := 0; ; {
		start := time.Now()
		res, err := w.applyOnce(ctx, es)
		if err == nil {
			w.diskFull.Store(false)
			w.committed(ctx, start, qs, es, res)
			return
		}
		if store.IsDiskFull(err) && !w.diskFull.Swap(true) {
			w.log.Error(LogDiskFull, "worker", w.name, "err", err)
		}
		if ctx.Err() != nil {
			return // stopping: the entries stay pending and are redelivered
		}
		if errors.Is(err, context.DeadlineExceeded) {
			w.m.BatchErrors.WithLabelValues("timeout").Inc()
			w.log.Warn(LogBatchTimeout, "worker", w.name, "entries", len(es), "timeout", w.cfg.BatchTimeout.String(), "err", err)
			fails++
			pause(ctx, fails)
			continue
		}
		if !store.IsDataError(err) {
			w.m.BatchErrors.WithLabelValues("transient").Inc()
			w.log.Warn(LogBatchRetry, "worker", w.name, "entries", len(es), "err", err)
			fails++
			pause(ctx, fails)
			continue
		}
		w.m.BatchErrors.WithLabelValues("data").Inc()
		if len(es) > 1 {
			w.log.Warn("batch refused for its data, applying entries one by one", "worker", w.name, "entries", len(es), "err", err)
			for i := range es {
				w.apply(ctx, qs[i:i+1], es[i:i+1])
			}
			return
		}
		tok := es[0].Token
		w.attempts[tok]++
		if w.attempts[tok] >= w.cfg.MaxAttempts {
			delete(w.attempts, tok)
			w.poison(ctx, qs[0], es[0].Events, err.Error())
			return
		}
		fails++
		pause(ctx, fails)
	}
}

// applyOnce is one attempt at the batch transaction, bounded by BatchTimeout.
func (w *worker) applyOnce(ctx context.Context, es []store.Entry) (store.Applied, error) {
	if w.cfg.BatchTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.cfg.BatchTimeout)
		defer cancel()
	}
	return w.st.ApplyBatch(ctx, w.name, es)
}

func (w *worker) committed(ctx context.Context, start time.Time, qs []queue.Entry, es []store.Entry, res store.Applied) {
	w.m.Batches.Inc()
	w.m.CommitLatency.Observe(time.Since(start).Seconds())
	w.m.BatchSize.Observe(float64(res.Inserted + res.Dropped))
	w.m.EventsStored.Add(float64(res.Inserted))
	w.m.EventsDropped.Add(float64(res.Dropped))
	w.m.Redeliveries.Add(float64(len(res.Seen)))
	toAck := make([]queue.Entry, 0, len(qs))
	for _, i := range res.Fresh {
		w.m.PublishToCommit.Observe(res.StoredAt.Sub(es[i].ReceivedAt).Seconds())
		delete(w.attempts, es[i].Token)
		toAck = append(toAck, qs[i])
	}
	for _, i := range res.Seen {
		toAck = append(toAck, qs[i])
	}
	if n := len(res.Seen) - len(res.Twice); n > 0 {
		// Committed before and not acknowledged: a crash, a claim, a
		// commit whose answer was lost.
		w.log.Info(LogAlreadyApplied, "worker", w.name, "entries", n)
	}
	if len(res.Twice) > 0 {
		w.log.Info(LogAppendedTwice, "worker", w.name, "entries", len(res.Twice))
	}
	w.ack(ctx, toAck)
	for _, i := range res.SeenFailed {
		w.deadLetter(ctx, qs[i], "recorded as failed before a crash")
	}
}

// poison records a failed entry in the store (FAILED audit, once) and moves
// it to the dead-letter stream.
func (w *worker) poison(ctx context.Context, e queue.Entry, evs []event.Event, reason string) {
	w.log.Error("dead-lettering entry", "worker", w.name, "entry", e.ID, "reason", reason)
	f := store.Failure{
		Entry:  store.Entry{Token: e.Token, EntryID: e.ID, ReceivedAt: e.ReceivedAt, QueuedAt: e.QueuedAt(), Events: evs},
		Reason: reason,
	}
	for fails := 0; ; {
		_, err := w.st.RecordFailure(ctx, w.name, f)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("recording a failed entry failed, retrying", "worker", w.name, "entry", e.ID, "err", err)
		fails++
		pause(ctx, fails)
	}
	w.deadLetter(ctx, e, reason)
}

func (w *worker) deadLetter(ctx context.Context, e queue.Entry, reason string) {
	for fails := 0; ; {
		moved, err := w.q.DeadLetter(ctx, e, reason)
		if err == nil {
			if moved {
				w.m.DeadLetters.Inc()
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("dead-lettering failed, retrying", "worker", w.name, "entry", e.ID, "err", err)
		fails++
		pause(ctx, fails)
	}
}

// ack acknowledges committed entries, retrying while Redis is away. If ctx
// ends first they stay pending; the ledger recognises them when redelivered.
func (w *worker) ack(ctx context.Context, entries []queue.Entry) {
	if len(entries) == 0 {
		return
	}
	for fails := 0; ; {
		_, err := w.q.Ack(ctx, entries)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("ack failed, retrying", "worker", w.name, "entries", len(entries), "err", err)
		fails++
		pause(ctx, fails)
	}
}

// pause waits a backoff that grows with the number of consecutive failures
// (50 ms doubling to 2 s), or exactly d when given, or until ctx ends.
func pause(ctx context.Context, fails int, d ...time.Duration) {
	wait := 50 * time.Millisecond << min(max(fails-1, 0), 6)
	wait = min(wait, 2*time.Second)
	if len(d) > 0 {
		wait = d[0]
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
