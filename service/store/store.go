// Package store is the service's only door to PostgreSQL: schema migrations,
// the batch apply that gives the exactly-once effect, and the read models
// behind /events, /stats and /audit.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options configures a Store.
type Options struct {
	MaxConns int
	// Method is the batch upsert method: "unnest" (default) or "copy".
	Method string
	// MaxTopics bounds the topics (and workers) Counts and AuditSummary
	// list (STATS_MAX_TOPICS); 0: no bound. The totals always count all.
	MaxTopics int
}

// Store is a PostgreSQL database holding events, audit, counters and the ledger.
type Store struct {
	pool *pgxpool.Pool
	opts Options
}

// Open connects to the database at url. It does not migrate.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: parse DATABASE_URL: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(opts.MaxConns)
	}
	if opts.Method == "" {
		opts.Method = MethodUnnest
	}
	if opts.Method != MethodUnnest && opts.Method != MethodCopy {
		return nil, fmt.Errorf("store: unknown upsert method %q", opts.Method)
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	// A statement that hangs (a paused or cut-off server) must not hold a
	// worker forever; the batch is retried.
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "60000"
	cfg.ConnConfig.RuntimeParams["application_name"] = "chronicleweaver"
	cfg.HealthCheckPeriod = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	return &Store{pool: pool, opts: opts}, nil
}

// Close closes every connection.
func (s *Store) Close() { s.pool.Close() }

// Pool exposes the connection pool to the harness's read-back and to tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// IsTransient reports whether err is worth retrying unchanged: a lost
// connection, a timeout, a server shutting down, a serialization failure or
// deadlock. Data errors (the batch itself is bad) are not transient.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", "23", "42", "54", "2B", "2F", "XX":
			// data exception, integrity, syntax/access, program limit,
			// dependent objects, SQL routine, internal: a retry fails the same way
			return false
		}
		return true
	}
	return true // connection, context and network errors
}

// IsDiskFull reports whether err is PostgreSQL refusing a write for want
// of disk space (SQLSTATE 53100 disk_full): transient, it passes when
// space comes back.
func IsDiskFull(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "53100"
}

// IsDataError reports whether err says the batch's content was refused.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && !IsTransient(err)
}

// inTx runs fn in a READ COMMITTED transaction and commits it.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}
