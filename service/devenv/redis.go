package devenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/chronicleweaver/chronicleweaver/internal/proc"
)

// RedisOptions configures StartRedis.
type RedisOptions struct {
	// AppendFsync is the appendfsync policy: "always" (default), "everysec" or "no".
	AppendFsync string
	// NoAOF runs Redis without persistence at all (appendonly no, and no RDB
	// snapshots either): a killed or restarted server comes back empty. It
	// exists to plant the "Redis without AOF" bug in fault tests.
	NoAOF bool
	// Logf, if set, receives lifecycle messages (start, stop, port retries).
	Logf func(format string, args ...any)
	// PrepareDataDir, if set, is called with the path of a directory (not
	// yet created) that becomes the server's working directory (its
	// "dir": the AOF directory and the temporary files Redis renames
	// into it; the configuration and the log stay outside), before the
	// server first starts: the harness mounts a small filesystem there
	// to fill it (a disk fault). Whatever it mounts must be unmounted
	// before Close, which removes the server directory.
	PrepareDataDir func(path string) error
}

// Redis is a redis-server in a temporary directory, run as a child process
// with the append-only file on (unless RedisOptions.NoAOF) and RDB snapshots off. Its methods are safe for
// concurrent use; lifecycle methods (Start, Stop, Kill, Close) are serialised.
type Redis struct {
	server
	opts     RedisOptions
	confPath string
}

// StartRedis starts redis-server on a free port of 127.0.0.1 with its data
// (AOF) in a new directory under os.TempDir. It returns when the server
// answers PING, or fails when ctx ends (60 s if ctx has no deadline). The
// caller must Close it.
func StartRedis(ctx context.Context, opts RedisOptions) (_ *Redis, err error) {
	switch opts.AppendFsync {
	case "":
		opts.AppendFsync = "always"
	case "everysec", "always", "no":
	default:
		return nil, fmt.Errorf(`redis: invalid AppendFsync %q: use "everysec", "always" or "no"`, opts.AppendFsync)
	}
	bin, err := findRedisServer()
	if err != nil {
		return nil, err
	}
	reapStaleOnce(opts.Logf)
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()

	dir, err := makeServerDir("redis")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	confPath := filepath.Join(dir, "redis.conf")
	r := &Redis{
		server: server{
			name:       "redis",
			procName:   "redis-server",
			bin:        bin,
			args:       []string{confPath},
			portFlag:   "--port",
			bindErrors: []string{"Address already in use", "Failed listening on port"},
			logf:       opts.Logf,
			version:    binaryVersion(bin, "Redis", redisVersionRE),
			dir:        dir,
			logPath:    filepath.Join(dir, "redis.log"),
		},
		opts:     opts,
		confPath: confPath,
	}
	r.ping = r.probe
	if err := r.writeConfig(); err != nil {
		return nil, err
	}
	if opts.PrepareDataDir != nil {
		if err := opts.PrepareDataDir(r.dataDir()); err != nil {
			return nil, fmt.Errorf("redis: prepare the data directory: %w", err)
		}
	}
	// Created private before the server starts; every start appends to it.
	f, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("redis: create log file: %w", err)
	}
	f.Close()
	if err := r.startOnFreePort(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Redis) writeConfig() error {
	appendonly := "yes"
	if r.opts.NoAOF {
		appendonly = "no"
	}
	// Values are quoted for sdssplitargs, which understands Go-style \" and \\.
	conf := fmt.Sprintf(`# Written by devenv. The port is given on the command line.
bind 127.0.0.1
protected-mode yes
daemonize no
supervised no
dir %s
pidfile %s
logfile ""
save ""
appendonly %s
appendfsync %s
appenddirname "appendonlydir"
appendfilename "appendonly.aof"
`, strconv.Quote(r.dataDir()), strconv.Quote(filepath.Join(r.dir, "redis.pid")), appendonly, r.opts.AppendFsync)
	if err := os.WriteFile(r.confPath, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("redis: write config: %w", err)
	}
	return nil
}

// dataDir is the server's working directory: the server directory, or its
// "data" subdirectory with RedisOptions.PrepareDataDir.
func (r *Redis) dataDir() string {
	if r.opts.PrepareDataDir != nil {
		return filepath.Join(r.dir, "data")
	}
	return r.dir
}

// newAdminClient returns a minimal go-redis client (no retries, no
// handshake extras that Redis 7.0 does not know).
func newAdminClient(addr string, poolSize int) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                     addr,
		Protocol:                 2,
		DisableIdentity:          true,
		MaxRetries:               -1,
		DialerRetries:            1,
		ContextTimeoutEnabled:    true,
		DialTimeout:              time.Second,
		ReadTimeout:              2 * time.Second,
		WriteTimeout:             2 * time.Second,
		PoolSize:                 poolSize,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}

// probe checks that the server answering is ours (pid), has finished
// loading the AOF and answers PING.
func (r *Redis) probe(ctx context.Context, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := dialRESP(ctx, r.Addr())
	if err != nil {
		return err
	}
	defer c.close()
	info, err := c.command("INFO", "server", "persistence")
	if err != nil {
		return err
	}
	fields := parseInfo(info)
	if fields["process_id"] != strconv.Itoa(pid) {
		return fmt.Errorf("%w (process_id %s)", errPortTaken, fields["process_id"])
	}
	if fields["loading"] != "0" || (fields["async_loading"] != "" && fields["async_loading"] != "0") {
		return errors.New("still loading the AOF")
	}
	_, err = c.command("PING")
	return err
}

// RedisCommand sends one command to the Redis server at addr on a new
// connection and returns its simple-string, integer (as decimal text) or
// bulk-string reply; an error
// reply (such as LOADING while the AOF loads) is returned as an error. ctx
// bounds the exchange. It speaks RESP directly, so that a refused
// connection is not logged by a client library.
func RedisCommand(ctx context.Context, addr string, args ...string) (string, error) {
	c, err := dialRESP(ctx, addr)
	if err != nil {
		return "", err
	}
	defer c.close()
	return c.command(args...)
}

// PingRedis sends PING to the Redis server at addr (see RedisCommand) and
// checks that it answers PONG.
func PingRedis(ctx context.Context, addr string) error {
	reply, err := RedisCommand(ctx, addr, "PING")
	if err == nil && reply != "PONG" {
		err = fmt.Errorf("PING: %q", reply)
	}
	return err
}

// respConn is a connection to a Redis server, spoken to in RESP.
type respConn struct {
	conn net.Conn
	rd   *bufio.Reader
	stop func() bool // stops closing conn when the context ends
}

// dialRESP connects to addr. The connection's deadline is ctx's, and it is
// closed when ctx ends. The caller must close it.
func dialRESP(ctx context.Context, addr string) (*respConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	return &respConn{conn: conn, rd: bufio.NewReader(conn), stop: context.AfterFunc(ctx, func() { conn.Close() })}, nil
}

func (c *respConn) close() {
	c.stop()
	c.conn.Close()
}

// command sends a command and reads a simple-string, error or bulk-string reply.
func (c *respConn) command(args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		return "", err
	}
	line, err := c.rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty RESP reply")
	}
	switch line[0] {
	case '+', ':': // a simple string, or an integer (LLEN) as its decimal text
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("unexpected RESP reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("unexpected RESP reply %q", line)
	}
}

// parseInfo parses the "key:value" lines of an INFO reply.
func parseInfo(info string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			m[k] = v
		}
	}
	return m
}

// Addr returns "127.0.0.1:PORT". The port does not change on restarts.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// URL returns "redis://127.0.0.1:PORT/0".
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Port returns the TCP port on 127.0.0.1.
func (r *Redis) Port() int { return r.port }

// Dir returns the server directory (redis.conf, the log and appendonlydir).
func (r *Redis) Dir() string { return r.dir }

// LogPath returns the server log file (inside Dir).
func (r *Redis) LogPath() string { return r.logPath }

// Version returns the server version, e.g. "Redis 7.0.15".
func (r *Redis) Version() string { return r.version }

// PID returns the server's pid, or 0 when it is not running.
func (r *Redis) PID() int { return r.pid() }

// Exited returns a channel closed when the current server process has exited
// and been reaped (already closed when it is not running). After a Start,
// call it again to get the new process's channel.
func (r *Redis) Exited() <-chan struct{} { return r.exitedChan() }

// Kill sends SIGKILL to the server (and any AOF-rewrite child: its process
// group) and waits until it is reaped. Killing a server that is not running
// is a no-op.
func (r *Redis) Kill() error { return r.kill() }

// Start starts the server again on the same directory, port and AOF after
// Stop or Kill. It returns once PING answers and the AOF has been loaded; ctx
// bounds the wait (60 s if it has no deadline). It fails if the server is
// running or closed.
func (r *Redis) Start(ctx context.Context) error { return r.restart(ctx) }

// Stop shuts the server down gracefully (SIGTERM: the AOF is flushed and
// fsynced) and waits for it to exit. A paused server is resumed first.
// Stopping a server that is not running is a no-op.
func (r *Redis) Stop(ctx context.Context) error {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	return r.stop(ctx, syscall.SIGTERM, "stop", "")
}

// Pause sends SIGSTOP to the server's process group: connections stay open
// but nothing is answered until Resume.
func (r *Redis) Pause() error { return r.signalRunning((*proc.Process).Pause) }

// Resume sends SIGCONT to the server's process group.
func (r *Redis) Resume() error { return r.signalRunning((*proc.Process).Resume) }

// Usage is what the current server process (and any AOF-rewrite child) has
// used since it started (see proc.Process.Usage); zero before the first
// start.
func (r *Redis) Usage() proc.Usage { return r.usage() }

// Close kills the server and removes its directory. It is idempotent.
func (r *Redis) Close() error { return r.close(nil) }
