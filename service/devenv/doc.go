// Package devenv starts throwaway PostgreSQL clusters and Redis servers as
// local processes (no Docker) for tests, for the `make run` development
// command and for the load / fault-injection harness. It is the project's one
// way of starting these servers.
//
// # Servers
//
// [StartPostgres] runs initdb in a fresh directory under [os.TempDir] and then
// starts the `postgres` binary directly as a child process. [StartRedis]
// starts `redis-server` with the append-only file enabled (appendonly yes, no
// RDB snapshots). Both listen on 127.0.0.1 only, on a free port from the
// process's one port registry (internal/proc, shared with the harness's
// service instances; if the server then loses the race for that port to
// another program it is retried on another one). Both are started through
// internal/proc in their own process group (Setpgid), so a Ctrl-C in the
// terminal does not reach them directly, and signals reach the whole
// server: [Postgres.Pause] / [Redis.Pause] (SIGSTOP) freeze it together
// with its children and return once every thread is stopped, and Kill
// (SIGKILL) ends all of them. PostgreSQL backends call setsid and so leave
// the postmaster's group; they are therefore signalled one by one as well,
// listed from /proc while the postmaster is stopped (so it cannot fork new
// ones and their pids cannot be reused).
//
// The returned handles own their process: a goroutine waits for it, so a
// killed server is always reaped, and the Exited channel reports its end.
// Usage reports the CPU time and memory of the current process and all its
// children (PostgreSQL's backends).
// The lifecycle methods used by the fault-injection harness are
//
//	Postgres: Stop (fast shutdown), StopImmediate (crash: no checkpoint),
//	          Kill (SIGKILL to the whole process group), Start (same dir and
//	          port; returns when it accepts connections), Pause / Resume.
//	Redis:    Stop (graceful, SIGTERM), Kill (SIGKILL), Start (same dir,
//	          port and AOF; returns when loading has finished), Pause / Resume.
//
// Start methods wait by polling the server with a short backoff until the
// context's deadline (60 s when the context has none); they never sleep a
// fixed amount. When a start fails, the error's first line is the reason and
// the last lines of the server log follow. Every server writes its log to a
// file in its directory, see LogPath.
//
// # Binaries
//
// PostgreSQL: $PG_BIN (a directory holding initdb and postgres), else the
// highest version in /usr/lib/postgresql/*/bin, else $PATH.
// Redis: $REDIS_SERVER (path of the redis-server binary), else $PATH, else
// /usr/bin and /usr/local/bin. If a binary is missing the error is one line
// telling what to install.
//
// PostgreSQL refuses to run as root. When the current process is root,
// initdb and postgres run as the user "nobody" and the data directory is
// owned by that user; Redis always runs as the current user.
//
// # Durability
//
// By default (PostgresOptions.Durable false) PostgreSQL runs with fsync=off,
// synchronous_commit=off and full_page_writes=off. That is still safe against
// process crashes (StopImmediate, Kill): everything written is in the kernel
// page cache. It is not safe against an operating-system crash, which tests do
// not simulate. Note that with synchronous_commit=off a commit returns before
// its WAL is written, so a transaction that must survive a process crash in a
// test should SET synchronous_commit = on (it is cheap with fsync off).
// Durable keeps the PostgreSQL defaults for benchmarks.
//
// Redis uses appendfsync always by default: a reply is sent only after the
// write is in the AOF and fsynced. With "everysec" a write usually reaches
// the kernel before the reply and survives SIGKILL, but while a background
// fsync is slow (a busy disk) Redis 7.0 postpones the write for up to 2 s
// and still replies, so a SIGKILL in that window loses acknowledged writes
// (the property tests' state machine found this).
//
// # Tests
//
// A test package shares one PostgreSQL and one Redis:
//
//	var env *devenv.Env
//
//	func TestMain(m *testing.M) { os.Exit(devenv.RunTests(m, &env)) }
//
//	func TestSomething(t *testing.T) {
//		dbURL := env.NewDatabase(t) // fresh database, dropped at cleanup
//		prefix := env.NewPrefix(t)  // fresh Redis key prefix, keys deleted at cleanup
//		...
//	}
//
// RunTests never skips: if the servers cannot be started it prints the reason
// and the test binary fails. Set DEVENV_VERBOSE=1 to log server lifecycle
// events to stderr.
//
// # Leftovers
//
// Close stops a server (fast shutdown, then immediate, then SIGKILL) and
// removes its directory; it is idempotent, and RunTests also closes the
// servers on SIGINT/SIGTERM. A process that is killed hard (SIGKILL, a panic
// in a test, a `go test` timeout) cannot clean up, and its servers keep
// running. Every directory name therefore records the pid of its owner
// (devenv-pg-<pid>-*, devenv-redis-<pid>-*), and the first start in a later
// process removes the directories of owners that no longer exist and
// SIGKILLs their servers (after checking that the server's working directory
// is that directory, so a recycled pid is never killed). [ReapStale] does
// that explicitly. (Pdeathsig is not used: the kernel clears it when
// PostgreSQL's credentials change, and Go ties it to the forking thread.)
package devenv
