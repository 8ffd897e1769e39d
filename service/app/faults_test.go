package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
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

// A Redis frozen (SIGSTOP) past PUBLISH_TIMEOUT refuses nothing and answers
// nothing: every publish must still be answered 503 within about
// PUBLISH_TIMEOUT ("rejected" for one that never left for Redis), and once
// Redis is thawed nothing acknowledged is lost and the stats are exact.
func TestRedisPausedPastPublishTimeout(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rds, err := devenv.StartRedis(ctx, devenv.RedisOptions{AppendFsync: "always"})
	mustf(t, err == nil, "start redis: %v", err)
	t.Cleanup(func() { _ = rds.Close() })
	tb := newTestbed(t, func(c *config.Config) {
		c.RedisURL = rds.URL()
		c.WorkerCount = 2
		c.PublishTimeout = 500 * time.Millisecond
	})
	l := startLoad(t, tb.url, "redis-pause", 4, 5)
	l.waitAcked(40, "publishes acknowledged before the pause")
	mustf(t, rds.Pause() == nil, "pause redis")
	type answer struct {
		code    int
		outcome string
		took    time.Duration
	}
	answers := make(chan answer, 16)
	for i := range cap(answers) {
		go func() {
			body := fmt.Sprintf(`{"events":[{"event_id":"direct-%d","topic":"redis-pause","source":"t","timestamp":"2026-01-01T00:00:00Z","payload":{"message":"m","timestamp":"2026-01-01T00:00:00Z"}}]}`, i)
			start := time.Now()
			code, hdr := 0, http.Header{}
			resp, err := (&http.Client{Timeout: 20 * time.Second}).Post(tb.url+"/publish", "application/json", strings.NewReader(body))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code, hdr = resp.StatusCode, resp.Header
			}
			answers <- answer{code, hdr.Get("Chronicle-Outcome"), time.Since(start)}
		}()
	}
	rejected := 0
	for range cap(answers) {
		a := <-answers
		mustf(t, a.code == http.StatusServiceUnavailable && a.took < 3*time.Second,
			"publish to a frozen Redis: %d (%s) after %v; want 503 within about PUBLISH_TIMEOUT", a.code, a.outcome, a.took)
		if a.outcome == "rejected" {
			rejected++
		}
	}
	mustf(t, rejected > 0, "no publish answered 503 rejected: each one waiting for its turn past PUBLISH_TIMEOUT surely was not sent")
	mustf(t, rds.Resume() == nil, "resume redis")
	l.waitAcked(40, "publishes acknowledged after the thaw")
	checkExact(t, tb, l)
}

// A PostgreSQL frozen (SIGSTOP) cannot enforce its statement_timeout: the
// worker gives up on its batch after BATCH_TIMEOUT and retries it, again
// and again while the server sleeps. The attempts it gave up on were sent,
// so the thawed server runs them all: one commits, every other one (and
// the worker's next retry) must find the entries in the ledger, so nothing
// is applied twice and the stats stay exact.
func TestPostgresPausedPastBatchTimeout(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := devenv.StartPostgres(ctx, devenv.PostgresOptions{Settings: map[string]string{"synchronous_commit": "on"}})
	mustf(t, err == nil, "start postgres: %v", err)
	t.Cleanup(func() { _ = pg.Close() })
	dbURL, err := pg.CreateDatabase(ctx, "faults")
	mustf(t, err == nil, "create database: %v", err)
	tb := newTestbed(t, func(c *config.Config) {
		c.DatabaseURL = dbURL
		c.WorkerCount = 2
		c.BatchSize = 20
		c.BatchTimeout = time.Second
	})
	l := startLoad(t, tb.url, "pg-pause", 4, 5)
	l.waitAcked(40, "publishes acknowledged before the pause")
	const timeouts = `chronicle_batch_errors_total{kind="timeout"}`
	mustf(t, pg.Pause() == nil, "pause postgres")
	l.waitAcked(40, "publishes acknowledged while PostgreSQL is frozen")
	waitFor(t, 30*time.Second, "batches abandoned after BATCH_TIMEOUT, each worker's twice", func() bool {
		v, _ := tb.metric(timeouts)
		return v >= 4
	})
	mustf(t, pg.Resume() == nil, "resume postgres")
	l.waitAcked(40, "publishes acknowledged after the thaw")
	checkExact(t, tb, l)
	redelivered, _ := tb.metric("chronicle_redeliveries_total")
	t.Logf("%v entries found already applied by a later attempt", redelivered)
}
