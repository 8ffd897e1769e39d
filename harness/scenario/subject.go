package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
	"github.com/chronicleweaver/chronicleweaver/harness/load"
	"github.com/chronicleweaver/chronicleweaver/harness/subject"
)

// How a run talks to and judges its subject (Options.Subject): the client
// reads through the subject's mapping, the load sends its request shape,
// and what the subject does not offer becomes the checker's gaps.

// client is a client of base that reads through the subject's mapping,
// with its backlog (a Redis list) where its /stats does not report one.
func (o Options) client(base string, e env.Env) (*client.Client, error) {
	c := client.New(base, o.Token)
	c.Subject = o.Subject
	if o.Subject != nil && o.Subject.Backlog.RedisList != "" {
		r, ok := e.(interface{ RedisURL() string })
		if !ok {
			return c, nil // an external target: its Redis is not known
		}
		b, err := client.RedisListBacklog(r.RedisURL(), o.Subject.Backlog.RedisList)
		if err != nil {
			return nil, fmt.Errorf("scenario: subject %s: %w", o.Subject.Name, err)
		}
		c.Backlog = b
	}
	return c, nil
}

// LoadMaxConns caps the load's connections to each target on the local
// and external backends (the docker backend caps at env.DockerMaxConns).
// The service serves MAX_CONNECTIONS (4,096 by default) at once and keeps
// the rest waiting in the kernel's backlog: a load that kept opening
// connections while a fault slowed the answers held every slot with its
// keep-alive connections, and the harness's own readiness probe waited
// behind them until the load ended (crash-redis in make verify: 90 s
// "to ready" after a heal that took 0.3 s). A request waiting for one of
// these connections still counts from its scheduled time.
const LoadMaxConns = 1024

// loadConfig adds the subject's request shape and acknowledgements to cfg,
// and the backend's cap on the load's connections.
func (o Options) loadConfig(e env.Env, cfg load.Config) load.Config {
	if e.Info().Backend == BackendDocker {
		cfg.MaxConns = env.DockerMaxConns
	} else if cfg.MaxConns == 0 {
		cfg.MaxConns = LoadMaxConns
	}
	if o.Subject != nil {
		cfg.Encode = o.Subject.Encoder()
		cfg.Acknowledged = o.Subject.Acknowledged
	}
	return cfg
}

// idempotencyHeader is the header the load sends a key in: the subject's
// (ours: Idempotency-Key), unless the scenario turns keys off
// (events.idempotency_keys: false); "" for none. Unset, keys are on in the
// checked scenarios and off in the measured ones (bench, search): those
// measure the service as the committed tables always have, without the
// key record each keyed request adds to Redis.
func (o Options) idempotencyHeader(s *Scenario) string {
	if k := s.Events.IdempotencyKeys; (k != nil && !*k) || (k == nil && s.Kind != KindCheck) {
		return ""
	}
	if o.Subject == nil {
		return "Idempotency-Key"
	}
	return o.Subject.API.Publish.IdempotencyKey
}

// gaps are what the subject does not offer, as /stats answered (has) and
// its file says.
func (o Options) gaps(has subject.StatsFields, c *client.Client) checker.Gaps {
	var g checker.Gaps
	name := "the subject"
	if o.Subject != nil {
		name = "subject " + o.Subject.Name
	}
	if !has.Counters() {
		g.Counters = name + "'s /stats has no received, unique_processed and duplicated_dropped (api.stats)"
	}
	if !has.Queue() {
		quiet := time.Duration(0)
		if o.Subject != nil {
			quiet = o.Subject.API.Stats.Quiet.D()
		}
		if c.Backlog != nil {
			g.Queue = fmt.Sprintf("%s's /stats reports no queue_depth or pending: drained when its Redis list %s is empty and its counters held still for %s",
				name, o.Subject.Backlog.RedisList, quiet)
		} else {
			g.Queue = fmt.Sprintf("%s's /stats reports no queue_depth or pending, and no backlog is declared: drained when its counters held still for %s", name, quiet)
		}
	}
	if !has.DeadLettered {
		g.DeadLetters = name + "'s /stats reports no dead-lettered count"
	}
	if o.Subject != nil && o.Subject.API.AuditSummary == "" {
		g.Audit = name + " has no /audit/summary"
	}
	return g
}

// readBackTable is the subject's table of stored events (nil: ours, the
// contract's events table, read as client.StoredKeysDB does).
func (o Options) readBackTable() *subject.ReadBack {
	if o.Subject == nil || o.Subject.Ours {
		return nil
	}
	return &o.Subject.ReadBack
}

// readBack counts the run's stored keys: from the subject's table in
// PostgreSQL when the database is known, else through its /events.
func (o Options) readBack(ctx context.Context, e env.Env, c *client.Client, prefix string) (map[history.Key]int, error) {
	db := e.DatabaseURL()
	rb := o.readBackTable()
	switch {
	case db != "" && rb == nil:
		return client.StoredKeysDB(ctx, db, prefix)
	case db != "" && rb.Table != "":
		return client.StoredKeysIn(ctx, db, *rb, prefix)
	}
	return c.StoredKeysAPI(ctx, prefix)
}

// commitLatencies measures publish-to-commit from the subject's table: the
// commit time column minus its receive time column, or, where it has none,
// minus the send of the first request carrying the key. Only keys first
// sent in [since, until) count. It returns the latencies (ms), the rows and
// the last commit.
func commitLatencies(ctx context.Context, db string, rb subject.ReadBack, ops []history.Op, prefix string, since, until time.Time) ([]float64, int64, time.Time, error) {
	rows, err := client.CommitTimes(ctx, db, rb, prefix)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	first := map[history.Key]time.Time{}
	for _, op := range ops {
		if op.F != history.FPublish || op.Type != history.Invoke {
			continue
		}
		for _, k := range op.Keys {
			if t, ok := first[k]; !ok || op.Time.Before(t) {
				first[k] = op.Time
			}
		}
	}
	var ms []float64
	var n int64
	var last time.Time
	for _, r := range rows {
		sent, ok := first[r.Key]
		if !ok || sent.Before(since) || (!until.IsZero() && !sent.Before(until)) {
			continue
		}
		from := sent
		if r.HasReceive {
			from = r.Received
		}
		ms = append(ms, float64(r.Committed.Sub(from))/float64(time.Millisecond))
		n++
		if r.Committed.After(last) {
			last = r.Committed
		}
	}
	return ms, n, last, nil
}
