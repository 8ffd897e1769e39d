package devenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Env is one PostgreSQL and one Redis shared by the tests of a package.
type Env struct {
	PG    *Postgres
	Redis *Redis

	rdbOnce sync.Once
	rdb     *redis.Client
}

// StartEnv starts a PostgreSQL (not durable) and a Redis (appendfsync
// always) concurrently. logf may be nil. The caller must Close the Env.
func StartEnv(ctx context.Context, logf func(format string, args ...any)) (*Env, error) {
	var (
		wg     sync.WaitGroup
		e      Env
		pgErr  error
		rdbErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		e.PG, pgErr = StartPostgres(ctx, PostgresOptions{Logf: logf})
	}()
	go func() {
		defer wg.Done()
		e.Redis, rdbErr = StartRedis(ctx, RedisOptions{Logf: logf})
	}()
	wg.Wait()
	if err := errors.Join(pgErr, rdbErr); err != nil {
		e.Close()
		return nil, err
	}
	return &e, nil
}

// Close closes both servers (and removes their directories). It is idempotent.
func (e *Env) Close() error {
	var errs []error
	e.rdbOnce.Do(func() {}) // no client is created after Close
	if e.rdb != nil {
		e.rdb.Close()
	}
	if e.PG != nil {
		errs = append(errs, e.PG.Close())
	}
	if e.Redis != nil {
		errs = append(errs, e.Redis.Close())
	}
	return errors.Join(errs...)
}

// RunTests starts one Postgres and one Redis, stores them in *env, runs
// m.Run(), closes them, and returns the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(devenv.RunTests(m, &env)) }
//
// If starting fails it prints the reason (first line; the server log's last
// lines may follow) to stderr and returns 1: it never skips. On SIGINT or
// SIGTERM it closes the servers before the test binary dies. Set
// DEVENV_VERBOSE=1 to log server lifecycle events to stderr.
func RunTests(m *testing.M, env **Env) int {
	var logf func(string, ...any)
	if os.Getenv("DEVENV_VERBOSE") != "" {
		logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "devenv: "+format+"\n", args...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e, err := StartEnv(ctx, logf)
	cancel()
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "devenv") {
			msg = "devenv: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		return 1
	}
	*env = e

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "devenv: %v: stopping PostgreSQL and Redis\n", sig)
			e.Close()
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s) // as a shell reports death by that signal
			}
			os.Exit(code)
		case <-done:
		}
	}()

	code := m.Run()

	signal.Stop(sigs)
	close(done)
	if err := e.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "devenv: closing the test environment: %v\n", err)
	}
	return code
}

var dbCounter, prefixCounter atomic.Int64

// sanitizeName turns a test name into lowercase letters, digits and single
// underscores, at most max bytes.
func sanitizeName(name string, max int) string {
	var b strings.Builder
	underscore := true // no leading underscore
	for _, c := range strings.ToLower(name) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
			underscore = false
		} else if !underscore {
			b.WriteByte('_')
			underscore = true
		}
		if b.Len() >= max {
			break
		}
	}
	s := strings.TrimRight(b.String(), "_")
	if len(s) > max {
		s = strings.TrimRight(s[:max], "_")
	}
	if s == "" {
		s = "test"
	}
	return s
}

// NewDatabase creates a database named after tb.Name() (sanitised,
// truncated, plus a counter, e.g. "t_testfoo_sub_case_7") and returns its
// URL. The database is dropped WITH (FORCE) in tb.Cleanup.
func (e *Env) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t_%s_%d", sanitizeName(tb.Name(), 40), dbCounter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := e.PG.CreateDatabase(ctx, name)
	if err != nil {
		tb.Fatalf("devenv: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.PG.DropDatabase(ctx, name); err != nil {
			tb.Errorf("devenv: %v", err)
		}
	})
	return u
}

func (e *Env) redisClient() *redis.Client {
	e.rdbOnce.Do(func() { e.rdb = newAdminClient(e.Redis.Addr(), 4) })
	return e.rdb
}

// NewPrefix returns a Redis key prefix unique in this test binary, e.g.
// "cw:t42:". The keys starting with it are deleted (SCAN + DEL) in tb.Cleanup.
func (e *Env) NewPrefix(tb testing.TB) string {
	tb.Helper()
	prefix := fmt.Sprintf("cw:t%d:", prefixCounter.Add(1))
	client := e.redisClient()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deleteKeys(ctx, client, prefix); err != nil {
			tb.Errorf("devenv: delete Redis keys %s*: %v", prefix, err)
		}
	})
	return prefix
}

// deleteKeys deletes the keys starting with prefix, which must contain no
// glob metacharacters.
func deleteKeys(ctx context.Context, client *redis.Client, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := client.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := client.Del(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
