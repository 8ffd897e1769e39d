package devenv_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/chronicleweaver/chronicleweaver/internal/proc"
	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

var env *devenv.Env

// TestMain runs the package's tests on one PostgreSQL and one Redis, then
// fails if a goroutine outlived them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(withEnv{m}) }

// withEnv is m run by devenv.RunTests, for goleak.
type withEnv struct{ m *testing.M }

func (w withEnv) Run() int { return devenv.RunTests(w.m, &env) }

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func newRedisClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, Protocol: 2, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", d, err)
		}
		<-time.After(delay)
	}
}

func TestPostgresLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	var logs []string
	pg, err := devenv.StartPostgres(ctx, devenv.PostgresOptions{
		Settings: map[string]string{"max_connections": "50", "application_name": "it's devenv"},
		Logf:     func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := pg.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := pg.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
		if _, err := os.Stat(pg.Dir()); !os.IsNotExist(err) {
			t.Errorf("data dir %s still exists after Close: %v", pg.Dir(), err)
		}
		t.Logf("lifecycle log: %s", strings.Join(logs, "; "))
	}()
	if !strings.HasPrefix(pg.Version(), "PostgreSQL 1") {
		t.Errorf("Version() = %q", pg.Version())
	}
	if _, err := os.Stat(pg.LogPath()); err != nil {
		t.Errorf("log file: %v", err)
	}
	want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable", pg.Port())
	if got := pg.URL("x"); got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	if _, err := pg.CreateDatabase(ctx, `bad"name`); err == nil {
		t.Error("CreateDatabase accepted an invalid name")
	}
	url, err := pg.CreateDatabase(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}

	conn := connect(t, ctx, url)
	var maxConns string
	if err := conn.QueryRow(ctx, "SHOW max_connections").Scan(&maxConns); err != nil || maxConns != "50" {
		t.Errorf("max_connections = %q, %v; want 50 from Settings", maxConns, err)
	}
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Errorf("fsync = %q, %v; want off", fsync, err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v text)"); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO t VALUES ('survives')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// Crash (no checkpoint) and recover.
	if err := pg.StopImmediate(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pg.Exited():
	default:
		t.Fatal("Exited() not closed after StopImmediate")
	}
	if pg.PID() != 0 {
		t.Errorf("PID() = %d after stop", pg.PID())
	}
	if err := pg.Pause(); !errors.Is(err, devenv.ErrNotRunning) {
		t.Errorf("Pause on a stopped server: %v", err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(ctx); err == nil {
		t.Error("Start on a running server succeeded")
	}
	conn = connect(t, ctx, url)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != "survives" {
		t.Fatalf("after immediate stop and restart: %q, %v", v, err)
	}
	if !logContains(pg.LogPath(), "database system was interrupted") {
		t.Error("no crash recovery in the log after StopImmediate")
	}

	// Pause freezes the postmaster and the backends.
	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = conn.QueryRow(qctx, "SELECT 1").Scan(new(int))
	cancel()
	if err == nil {
		t.Fatal("query on a paused server succeeded")
	}
	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	conn = connect(t, ctx, url) // the old connection was broken by the timeout
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("after Resume: %d, %v", one, err)
	}

	// Kill (SIGKILL to the group) while paused, then restart.
	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn = connect(t, ctx, url)
	if err := conn.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != "survives" {
		t.Fatalf("after kill and restart: %q, %v", v, err)
	}

	// Fast stop of a paused server, then start again.
	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// A start that fails (port taken) reports the reason and the log's tail.
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", pg.Port()))
	if err != nil {
		t.Fatal(err)
	}
	err = pg.Start(ctx)
	l.Close()
	if err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("Start on a taken port: %v", err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pg.DropDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresUsage: the server's usage covers its backends (which call
// setsid and leave the postmaster's group), while they run and after they
// have exited and been reaped by the postmaster.
func TestPostgresUsage(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	pg, err := devenv.StartPostgres(ctx, devenv.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if !proc.PortReserved(pg.Port()) {
		t.Errorf("port %d not in the process's port registry", pg.Port())
	}
	// Three backends each burn CPU on a query and stay connected.
	var backends []int
	var conns []*pgx.Conn
	for range 3 {
		conn, err := pgx.Connect(ctx, pg.URL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		var pid int
		if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		backends = append(backends, pid)
		if _, err := conn.Exec(ctx, "SELECT count(*) FROM generate_series(1, 2000000)"); err != nil {
			t.Fatal(err)
		}
	}
	var backendCPU time.Duration
	for _, pid := range backends {
		u, err := proc.ReadUsage(pid)
		if err != nil {
			t.Fatal(err)
		}
		backendCPU += u.CPU
	}
	own, err := proc.ReadUsage(pg.PID())
	if err != nil {
		t.Fatal(err)
	}
	live := pg.Usage()
	t.Logf("postmaster %v, its 3 query backends %v, the server's usage %v over %d processes (peak RSS %d MiB)",
		own.CPU, backendCPU, live.CPU, live.Procs, live.PeakRSS>>20)
	if backendCPU < 100*time.Millisecond {
		t.Fatalf("the backends used %v: the queries did not burn CPU", backendCPU)
	}
	if live.CPU < own.CPU+backendCPU || live.Procs < 4 || live.PeakRSS <= 0 {
		t.Errorf("Usage %+v: want >= postmaster %v + backends %v over >= 4 processes", live, own.CPU, backendCPU)
	}
	// The backends exit and the postmaster reaps them: their time stays.
	for _, c := range conns {
		c.Close(ctx)
	}
	eventually(t, 10*time.Second, func() error {
		for _, pid := range backends {
			if proc.Alive(pid) {
				return fmt.Errorf("backend %d still there", pid)
			}
		}
		return nil
	})
	tree, err := proc.ReadTreeUsage(pg.PID())
	if err != nil {
		t.Fatal(err)
	}
	if tree.CPU < own.CPU+backendCPU {
		t.Errorf("after the backends were reaped the server's tree used %v, want >= %v", tree.CPU, own.CPU+backendCPU)
	}
	if after := pg.Usage(); after.CPU < live.CPU {
		t.Errorf("Usage went down: %v after %v", after.CPU, live.CPU)
	}
}

func TestPostgresDurable(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	pg, err := devenv.StartPostgres(ctx, devenv.PostgresOptions{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	conn := connect(t, ctx, pg.URL("postgres"))
	for setting, want := range map[string]string{"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "max_connections": "200", "shared_buffers": "128MB", "listen_addresses": "127.0.0.1"} {
		var got string
		if err := conn.QueryRow(ctx, "SHOW "+setting).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", setting, got, err, want)
		}
	}
}

func logContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

func TestPostgresStartTimeout(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := devenv.StartPostgres(ctx, devenv.PostgresOptions{}); err == nil {
		t.Fatal("StartPostgres with a cancelled context succeeded")
	}
	if _, err := devenv.StartPostgres(context.Background(), devenv.PostgresOptions{Settings: map[string]string{"port": "1"}}); err == nil {
		t.Fatal(`StartPostgres accepted Settings["port"]`)
	}
}

func TestRedisLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	r, err := devenv.StartRedis(ctx, devenv.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
		if _, err := os.Stat(r.Dir()); !os.IsNotExist(err) {
			t.Errorf("dir %s still exists after Close: %v", r.Dir(), err)
		}
	}()
	if !strings.HasPrefix(r.Version(), "Redis ") {
		t.Errorf("Version() = %q", r.Version())
	}
	if r.URL() != "redis://"+r.Addr()+"/0" || !strings.HasPrefix(r.Addr(), "127.0.0.1:") {
		t.Errorf("Addr %q URL %q", r.Addr(), r.URL())
	}
	c := newRedisClient(t, r.Addr())
	cfg, err := c.ConfigGet(ctx, "appendonly").Result()
	if err != nil || cfg["appendonly"] != "yes" {
		t.Fatalf("appendonly = %v, %v", cfg, err)
	}
	if cfg, err := c.ConfigGet(ctx, "save").Result(); err != nil || cfg["save"] != "" {
		t.Errorf("save = %v, %v; want empty", cfg, err)
	}
	for i := range 100 {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []any{"i", i}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// With appendfsync everysec an acknowledged write is normally already in
	// the AOF; wait until the AOF buffer is empty to rule out a postponed write.
	eventually(t, 5*time.Second, func() error {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "aof_buffer_length:0") {
			return errors.New("AOF buffer not yet written")
		}
		return nil
	})

	pid := r.PID()
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Exited():
	default:
		t.Fatal("Exited() not closed after Kill")
	}
	if conn, err := net.Dial("tcp", r.Addr()); err == nil {
		conn.Close()
		t.Fatal("port still accepts connections after Kill")
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if r.PID() == pid || r.PID() == 0 {
		t.Errorf("PID after restart = %d (before %d)", r.PID(), pid)
	}
	if n, err := c.XLen(ctx, "s").Result(); err != nil || n != 100 {
		t.Fatalf("XLEN after SIGKILL and restart = %d, %v; want 100", n, err)
	}

	// Pause: a command with a 300 ms deadline fails; after Resume it works.
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = c.Ping(pctx).Err()
	cancel()
	if err == nil {
		t.Fatal("PING on a paused server succeeded")
	}
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []any{"i", 100}}).Err(); err != nil {
		t.Fatalf("after Resume: %v", err)
	}

	// Graceful stop of a paused server keeps everything.
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := c.XLen(ctx, "s").Result(); err != nil || n != 101 {
		t.Fatalf("XLEN after Stop and restart = %d, %v; want 101", n, err)
	}

	// A start that fails (port taken) reports the reason and the log's tail.
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start(ctx)
	l.Close()
	if err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("Start on a taken port: %v", err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRedisOptions(t *testing.T) {
	t.Parallel()
	if _, err := devenv.StartRedis(context.Background(), devenv.RedisOptions{AppendFsync: "sometimes"}); err == nil {
		t.Fatal("invalid AppendFsync accepted")
	}
	ctx := testContext(t, 30*time.Second)
	r, err := devenv.StartRedis(ctx, devenv.RedisOptions{AppendFsync: "always"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg, err := newRedisClient(t, r.Addr()).ConfigGet(ctx, "appendfsync").Result()
	if err != nil || cfg["appendfsync"] != "always" {
		t.Fatalf("appendfsync = %v, %v", cfg, err)
	}
}

func TestMissingBinaries(t *testing.T) {
	// Not parallel: it changes the environment.
	t.Setenv("REDIS_SERVER", "/nonexistent/redis-server")
	_, err := devenv.StartRedis(context.Background(), devenv.RedisOptions{})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "REDIS_SERVER") {
		t.Errorf("StartRedis with a bad REDIS_SERVER: %v", err)
	}
	t.Setenv("PG_BIN", "/nonexistent")
	_, err = devenv.StartPostgres(context.Background(), devenv.PostgresOptions{})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "PG_BIN") {
		t.Errorf("StartPostgres with a bad PG_BIN: %v", err)
	}
}

func TestEnvNewDatabase(t *testing.T) {
	t.Parallel()
	var url string
	t.Run("Sub Test/with: weird ÅÄ chars and a very long name that must be truncated somewhere", func(t *testing.T) {
		url = env.NewDatabase(t)
		url2 := env.NewDatabase(t)
		if url == url2 {
			t.Fatalf("two databases with the same URL %s", url)
		}
		ctx := testContext(t, 20*time.Second)
		conn := connect(t, ctx, url)
		var name string
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "t_testenvnewdatabase_sub_test_with") || len(name) > 63 {
			t.Errorf("database name %q", name)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE x (id int)"); err != nil {
			t.Fatal(err)
		}
		// conn stays open: the cleanup must drop the database WITH (FORCE).
	})
	// The subtest's cleanups have run: its databases are gone.
	ctx := testContext(t, 20*time.Second)
	conn := connect(t, ctx, env.PG.URL("postgres"))
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE 't_testenvnewdatabase%'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d test databases left after cleanup (last URL %s)", n, url)
	}
}

func TestEnvNewPrefix(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	c := newRedisClient(t, env.Redis.Addr())
	var prefix string
	t.Run("sub", func(t *testing.T) {
		prefix = env.NewPrefix(t)
		if other := env.NewPrefix(t); other == prefix {
			t.Fatalf("NewPrefix returned %q twice", prefix)
		}
		if !strings.HasPrefix(prefix, "cw:t") || !strings.HasSuffix(prefix, ":") {
			t.Errorf("prefix %q", prefix)
		}
		pipe := c.Pipeline()
		for i := range 2500 {
			pipe.Set(ctx, fmt.Sprintf("%sk%d", prefix, i), i, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if err := c.Set(ctx, "unrelated", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	var left []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		left = append(left, iter.Val())
	}
	if err := iter.Err(); err != nil || len(left) != 0 {
		t.Errorf("keys with prefix %s after cleanup: %d, %v", prefix, len(left), err)
	}
	if n, err := c.Exists(ctx, "unrelated").Result(); err != nil || n != 1 {
		t.Errorf("unrelated key deleted: %d, %v", n, err)
	}
}
