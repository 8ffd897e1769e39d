package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicleweaver/chronicleweaver/internal/proc"
)

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	// Durable keeps fsync on (benchmarks). When false (tests) fsync=off and
	// full_page_writes=off, which is still safe against process kills
	// (pg_ctl -m immediate), only not against OS crashes. synchronous_commit
	// stays on either way: with it off a committed transaction can be lost
	// by a process kill, which would break the service's guarantee for a
	// reason that is not the service's.
	Durable bool
	// Settings are extra postgresql.conf settings, e.g. "max_connections": "200".
	// They override the defaults. "port" cannot be set (it is chosen by StartPostgres).
	Settings map[string]string
	// Logf, if set, receives lifecycle messages (start, stop, port retries).
	Logf func(format string, args ...any)
	// PrepareDataDir, if set, is called with the data directory (created,
	// empty) and the uid and gid the server runs as, before initdb: the
	// harness mounts a small filesystem there to fill it (a disk fault).
	// The write-ahead log then lives outside it, in a sibling directory
	// (initdb --waldir), and so does the server log, so that a full data
	// directory fails the writes of tables, not the WAL (which PostgreSQL
	// cannot survive without a crash) nor the log. Whatever it mounts must
	// be unmounted before Close, which removes the directories.
	PrepareDataDir func(path string, uid, gid int) error
}

// PostgresSuperuser is the superuser created by initdb; it connects without
// a password (trust authentication, 127.0.0.1 only).
const PostgresSuperuser = "postgres"

// Postgres is a PostgreSQL cluster in a temporary directory, run as a child
// process. Its methods are safe for concurrent use; lifecycle methods (Start,
// Stop, StopImmediate, Kill, Close) are serialised.
type Postgres struct {
	server // the postmaster
	opts   PostgresOptions
	binDir string
	user   pgUser
	// dataDir is the data directory: the server directory itself, or its
	// "data" subdirectory when PostgresOptions.PrepareDataDir is set (the
	// WAL then is in "wal" beside it).
	dataDir string
}

var settingNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// StartPostgres creates a cluster with initdb in a new directory under
// os.TempDir and starts it on a free port of 127.0.0.1. It returns when the
// server accepts connections, or fails when ctx ends (60 s if ctx has no
// deadline). The caller must Close it.
func StartPostgres(ctx context.Context, opts PostgresOptions) (_ *Postgres, err error) {
	for k := range opts.Settings {
		if !settingNameRE.MatchString(k) {
			return nil, fmt.Errorf("postgres: invalid setting name %q", k)
		}
		if strings.EqualFold(k, "port") {
			return nil, errors.New(`postgres: setting "port" is chosen by devenv and cannot be overridden`)
		}
	}
	binDir, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	u, err := postgresUser()
	if err != nil {
		return nil, err
	}
	reapStaleOnce(opts.Logf)
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()

	dir, err := makeServerDir("pg")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	bin := filepath.Join(binDir, "postgres")
	dataDir := dir
	if opts.PrepareDataDir != nil {
		dataDir = filepath.Join(dir, "data")
	}
	p := &Postgres{
		server: server{
			name:       "postgres",
			procName:   "postgres",
			bin:        bin,
			args:       []string{"-D", dataDir},
			portFlag:   "-p",
			cred:       u.cred,
			tree:       true,
			bindErrors: []string{"Address already in use", "could not create any TCP/IP sockets"},
			logf:       opts.Logf,
			version:    binaryVersion(bin, "PostgreSQL", pgVersionRE),
			dir:        dir,
			logPath:    filepath.Join(dir, "postgres.log"),
		},
		opts:    opts,
		binDir:  binDir,
		user:    u,
		dataDir: dataDir,
	}
	p.ping = func(ctx context.Context, _ int) error { return p.probe(ctx) }
	if err := u.chown(dir); err != nil {
		return nil, fmt.Errorf("postgres: chown data directory to nobody: %w", err)
	}
	if err := u.checkReachable(dir); err != nil {
		return nil, err
	}
	if opts.PrepareDataDir != nil {
		if err := p.prepareDataDir(); err != nil {
			return nil, err
		}
	}
	if err := p.initdb(ctx); err != nil {
		return nil, err
	}
	if err := p.writeConfig(); err != nil {
		return nil, err
	}
	// Created by us (root) before the server starts; handed to it as stdout/stderr.
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("postgres: create log file: %w", err)
	}
	f.Close()
	_ = u.chown(p.logPath)
	if err := p.startOnFreePort(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// prepareDataDir creates the data directory and the WAL directory beside
// it, owned by the server's user, and hands the data directory to
// PostgresOptions.PrepareDataDir.
func (p *Postgres) prepareDataDir() error {
	for _, d := range []string{p.dataDir, p.walDir()} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("postgres: create %s: %w", d, err)
		}
		if err := p.user.chown(d); err != nil {
			return fmt.Errorf("postgres: chown %s: %w", d, err)
		}
	}
	uid, gid := p.user.uid, p.user.gid
	if uid < 0 {
		uid, gid = os.Geteuid(), os.Getegid()
	}
	if err := p.opts.PrepareDataDir(p.dataDir, uid, gid); err != nil {
		return fmt.Errorf("postgres: prepare the data directory: %w", err)
	}
	return nil
}

// walDir is the WAL directory when it is outside the data directory.
func (p *Postgres) walDir() string { return filepath.Join(p.dir, "wal") }

// initdb creates the cluster, with the C.UTF-8 locale or C if that is missing.
func (p *Postgres) initdb(ctx context.Context) error {
	locales := []string{"C.UTF-8", "C"}
	for i, loc := range locales {
		// --no-sync even when Durable: a throwaway cluster need not survive an
		// OS crash right after initdb, and syncing costs seconds.
		args := []string{"-D", p.dataDir, "-U", PostgresSuperuser, "--auth=trust", "-E", "UTF8", "--locale=" + loc, "--no-sync"}
		if p.dataDir != p.dir {
			args = append(args, "--waldir="+p.walDir())
		}
		cmd := exec.CommandContext(ctx, filepath.Join(p.binDir, "initdb"), args...)
		cmd.Dir = "/" // the unprivileged user may not be able to enter our working directory
		cmd.Env = cleanEnv()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.user.cred}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("postgres: initdb: %w", ctx.Err())
		}
		if i+1 < len(locales) && bytes.Contains(out, []byte("locale")) {
			logf(p.opts.Logf, "initdb: locale %s unavailable, falling back to %s", loc, locales[i+1])
			for _, d := range []string{p.dataDir, p.walDir()} {
				if err := emptyDir(d); err != nil && (d == p.dataDir || !errors.Is(err, fs.ErrNotExist)) {
					return fmt.Errorf("postgres: initdb: %w", err)
				}
			}
			continue
		}
		tail := strings.TrimSpace(string(out))
		if lines := strings.Split(tail, "\n"); len(lines) > 25 {
			tail = strings.Join(lines[len(lines)-25:], "\n")
		}
		return fmt.Errorf("postgres: initdb failed (%v)\n--- initdb output ---\n%s", err, tail)
	}
	return nil
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func quoteConf(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
}

// writeConfig appends devenv's settings to postgresql.conf (later lines win).
func (p *Postgres) writeConfig() error {
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": "",
		"max_connections":         "200",
		"shared_buffers":          "128MB",
	}
	if !p.opts.Durable {
		settings["fsync"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range p.opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# --- written by devenv; the port is given on the command line ---\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, quoteConf(settings[k]))
	}
	f, err := os.OpenFile(filepath.Join(p.dataDir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("postgres: open postgresql.conf: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("postgres: write postgresql.conf: %w", err)
	}
	return f.Close()
}

// probe connects and checks that the server answering is ours.
func (p *Postgres) probe(ctx context.Context) error {
	cfg, err := pgx.ParseConfig(p.URL("postgres"))
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(actx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var dataDir string
	if err := conn.QueryRow(actx, "SHOW data_directory").Scan(&dataDir); err != nil {
		return err
	}
	if filepath.Clean(dataDir) != filepath.Clean(p.dataDir) {
		return fmt.Errorf("%w (data_directory %s)", errPortTaken, dataDir)
	}
	return nil
}

// Port returns the TCP port on 127.0.0.1. It does not change on restarts.
func (p *Postgres) Port() int { return p.port }

// Dir returns the data directory.
func (p *Postgres) Dir() string { return p.dataDir }

// LogPath returns the server log file (inside Dir).
func (p *Postgres) LogPath() string { return p.logPath }

// Version returns the server version, e.g. "PostgreSQL 15.18".
func (p *Postgres) Version() string { return p.version }

// URL returns the connection URL of database for the superuser (no password).
func (p *Postgres) URL(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", PostgresSuperuser, p.port, url.PathEscape(database))
}

// PID returns the postmaster's pid, or 0 when it is not running.
func (p *Postgres) PID() int { return p.pid() }

// Exited returns a channel closed when the current postmaster has exited and
// been reaped (already closed when it is not running). After a Start, call it
// again to get the new process's channel.
func (p *Postgres) Exited() <-chan struct{} { return p.exitedChan() }

var dbNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)

func checkDBName(name string) error {
	if !dbNameRE.MatchString(name) {
		return fmt.Errorf("postgres: invalid database name %q: use 1-63 letters, digits, '_' or '-', starting with a letter or '_'", name)
	}
	return nil
}

// CreateDatabase creates database name (letters, digits, '_' and '-', at most
// 63 bytes; it is quoted, so case is preserved) and returns its URL.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := checkDBName(name); err != nil {
		return "", err
	}
	if err := p.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("postgres: create database %s: %w", name, err)
	}
	return p.URL(name), nil
}

// DropDatabase drops database name if it exists, disconnecting its sessions
// (WITH (FORCE)).
func (p *Postgres) DropDatabase(ctx context.Context, name string) error {
	if err := checkDBName(name); err != nil {
		return err
	}
	if err := p.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("postgres: drop database %s: %w", name, err)
	}
	return nil
}

func (p *Postgres) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// Start starts the server again on the same directory and port after Stop,
// StopImmediate or Kill (running crash recovery if needed). It returns when
// the server accepts connections; ctx bounds the wait (60 s if it has no
// deadline). It fails if the server is running or closed.
func (p *Postgres) Start(ctx context.Context) error { return p.restart(ctx) }

// Stop performs a fast shutdown (SIGINT: sessions are disconnected, then a
// checkpoint) and waits for the postmaster to exit. A paused server is
// resumed first. Stopping a server that is not running is a no-op.
func (p *Postgres) Stop(ctx context.Context) error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	return p.stopFast(ctx)
}

// StopImmediate performs an immediate shutdown (SIGQUIT, like pg_ctl stop -m
// immediate): no checkpoint, so the next Start runs crash recovery. It waits
// for the postmaster to exit.
func (p *Postgres) StopImmediate(ctx context.Context) error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	return p.stopImmediate(ctx)
}

// stopFast and stopImmediate are Stop and StopImmediate for a caller that
// holds opMu.
func (p *Postgres) stopFast(ctx context.Context) error {
	return p.stop(ctx, syscall.SIGINT, "fast shutdown", "fast")
}

func (p *Postgres) stopImmediate(ctx context.Context) error {
	return p.stop(ctx, syscall.SIGQUIT, "immediate shutdown", "immediate")
}

// Kill sends SIGKILL to the postmaster and all its backends (its process
// group) and waits until the postmaster is reaped: a harsher crash than
// StopImmediate. Killing a server that is not running is a no-op.
func (p *Postgres) Kill() error { return p.kill() }

// Pause sends SIGSTOP to the postmaster and all its backends: connections
// stay open but nothing is answered until Resume.
func (p *Postgres) Pause() error { return p.signalRunning((*proc.Process).Pause) }

// Resume sends SIGCONT to the postmaster and all its backends.
func (p *Postgres) Resume() error { return p.signalRunning((*proc.Process).Resume) }

// Usage is what the current postmaster and its backends have used since
// it started (see proc.Process.Usage); zero before the first start.
func (p *Postgres) Usage() proc.Usage { return p.usage() }

// Close stops the server (fast shutdown, then immediate, then SIGKILL if
// needed) and removes its directory. It is idempotent.
func (p *Postgres) Close() error {
	return p.close(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := p.stopFast(ctx)
		cancel()
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = p.stopImmediate(ctx)
			cancel()
		}
		return err
	})
}
