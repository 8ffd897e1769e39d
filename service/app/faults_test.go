package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

// Guarantee 1 against Redis: a Redis killed with SIGKILL (twice) while
// publishers run, and restarted on its AOF, loses no acknowledged event,
// and the stats stay exact.
func TestRedisKilledWhilePublishing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A Redis of our own: the package's one serves parallel tests. Every
	// write is fsynced before its reply, so "acknowledged" is on disk.
	rds, err := devenv.StartRedis(ctx, devenv.RedisOptions{AppendFsync: "always"})
	mustf(t, err == nil, "start redis: %v", err)
	t.Cleanup(func() { _ = rds.Close() })

	tb := newTestbed(t, func(c *config.Config) {
		c.RedisURL = rds.URL()
		c.WorkerCount = 2
		c.BatchSize = 20
		c.ClaimIdle = time.Second
	})
	l := startLoad(t, tb.url, "redis-kill", 4, 5)
	for round := range 2 {
		l.waitAcked(40, "publishes acknowledged before the kill")
		refused := l.notOK.Load()
		mustf(t, rds.Kill() == nil, "round %d: kill redis", round)
		waitFor(t, 30*time.Second, "publishes refused while Redis is down", func() bool {
			return l.notOK.Load() >= refused+10
		})
		mustf(t, rds.Start(ctx) == nil, "round %d: restart redis", round)
		l.waitAcked(40, "publishes acknowledged after the restart")
	}
	s := checkExact(t, tb, l)
	mustf(t, s.DuplicatedDropped > 0, "no duplicates exercised: %+v", s)
}

// Guarantee 1 against PostgreSQL: an immediate shutdown (no checkpoint,
// crash recovery on start) while publishing. Publishing goes on without
// PostgreSQL; the workers retry; nothing acknowledged is lost.
func TestPostgresRestartedWhilePublishing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A PostgreSQL of our own. synchronous_commit must be on for a commit to
	// survive a crash (devenv turns it off by default; fsync=off is still
	// safe against a process crash).
	pg, err := devenv.StartPostgres(ctx, devenv.PostgresOptions{Settings: map[string]string{"synchronous_commit": "on"}})
	mustf(t, err == nil, "start postgres: %v", err)
	t.Cleanup(func() { _ = pg.Close() })
	dbURL, err := pg.CreateDatabase(ctx, "faults")
	mustf(t, err == nil, "create database: %v", err)

	tb := newTestbed(t, func(c *config.Config) {
		c.DatabaseURL = dbURL
		c.WorkerCount = 2
		c.BatchSize = 20
	})
	l := startLoad(t, tb.url, "pg-restart", 4, 5)
	const transient = `chronicle_batch_errors_total{kind="transient"}`
	for round := range 2 {
		l.waitAcked(40, "publishes acknowledged before the stop")
		errsBefore, _ := tb.metric(transient)
		mustf(t, pg.StopImmediate(ctx) == nil, "round %d: stop postgres", round)
		// Redis alone acknowledges publishes.
		l.waitAcked(40, "publishes acknowledged while PostgreSQL is down")
		waitFor(t, 30*time.Second, "a worker batch failing while PostgreSQL is down", func() bool {
			v, _ := tb.metric(transient)
			return v > errsBefore
		})
		mustf(t, pg.Start(ctx) == nil, "round %d: restart postgres", round)
		l.waitAcked(40, "publishes acknowledged after the restart")
	}
	l.stop()
	tb.db.Reset() // the test's own connections died with the server
	checkExact(t, tb, l)
}
