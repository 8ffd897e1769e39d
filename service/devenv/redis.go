package devenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
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
}

// Redis is a redis-server in a temporary directory, run as a child process
// with the append-only file on (unless RedisOptions.NoAOF) and RDB snapshots off. Its methods are safe for
// concurrent use; lifecycle methods (Start, Stop, Kill, Close) are serialised.
type Redis struct {
	opts     RedisOptions
	bin      string
	version  string
	dir      string
	confPath string
	logPath  string
	port     int

	opMu sync.Mutex // serialises lifecycle operations

	mu     sync.Mutex // guards proc and closed
	proc   *process
	closed bool
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
	r := &Redis{
		opts:     opts,
		bin:      bin,
		version:  binaryVersion(bin, "Redis", redisVersionRE),
		dir:      dir,
		confPath: filepath.Join(dir, "redis.conf"),
		logPath:  filepath.Join(dir, "redis.log"),
	}
	if err := r.writeConfig(); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		port, err := reservePort()
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		r.port = port
		proc, bindFailed, err := r.launch(ctx)
		if err == nil {
			r.proc = proc
			logf(opts.Logf, "redis %s started on port %d (pid %d, dir %s)", r.version, port, proc.pid, dir)
			return r, nil
		}
		releasePort(port)
		if !bindFailed || attempt == maxPortAttempts || ctx.Err() != nil {
			return nil, err
		}
		logf(opts.Logf, "redis could not use port %d, retrying with another one", port)
	}
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
`, strconv.Quote(r.dir), strconv.Quote(filepath.Join(r.dir, "redis.pid")), appendonly, r.opts.AppendFsync)
	if err := os.WriteFile(r.confPath, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("redis: write config: %w", err)
	}
	return nil
}

// launch starts redis-server on r.port and waits until it is ready.
// bindFailed reports that the port was not usable.
func (r *Redis) launch(ctx context.Context) (_ *process, bindFailed bool, _ error) {
	offset := fileSize(r.logPath)
	logFile, err := os.OpenFile(r.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("redis: open log: %w", err)
	}
	cmd := exec.Command(r.bin, r.confPath, "--port", strconv.Itoa(r.port))
	cmd.Dir = r.dir
	cmd.Env = cleanEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	proc, err := startProcess(cmd, false)
	logFile.Close() // the child has its own copy
	if err != nil {
		return nil, false, fmt.Errorf("redis: start %s: %w", r.bin, err)
	}
	if err := r.waitReady(ctx, proc); err != nil {
		_ = proc.kill()
		bindFailed = errors.Is(err, errPortTaken) ||
			logContains(r.logPath, offset, "Address already in use") ||
			logContains(r.logPath, offset, "Failed listening on port")
		return nil, bindFailed, startError(fmt.Sprintf("redis: server on %s did not become ready: %v", r.Addr(), err), r.logPath, offset)
	}
	return proc, false, nil
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

// waitReady polls until the server is ours, has finished loading the AOF
// and answers PING; or it exits, or ctx ends. It speaks RESP directly so that
// refused connections are not logged by a client library.
func (r *Redis) waitReady(ctx context.Context, proc *process) error {
	probeCtx, cancel := untilExit(ctx, proc)
	defer cancel()
	var delay time.Duration
	var lastErr error
	for {
		if proc.exited() {
			return fmt.Errorf("redis-server %s", proc.exitDescription())
		}
		err := r.ping(probeCtx, proc.pid)
		if err == nil {
			return nil
		}
		if errors.Is(err, errPortTaken) {
			return err
		}
		lastErr = err
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		}
		delay = backoff(delay)
		sleepCtx(ctx, delay, proc.done)
	}
}

func (r *Redis) ping(ctx context.Context, pid int) error {
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(actx, "tcp", r.Addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	defer context.AfterFunc(actx, func() { conn.Close() })()
	deadline, _ := actx.Deadline()
	conn.SetDeadline(deadline)
	rd := bufio.NewReader(conn)
	info, err := respCommand(conn, rd, "INFO", "server", "persistence")
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
	_, err = respCommand(conn, rd, "PING")
	return err
}

// respCommand sends a command and reads a simple-string, error or bulk-string reply.
func respCommand(w io.Writer, rd *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return "", err
	}
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty RESP reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("unexpected RESP reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
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

func (r *Redis) current() *process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// PID returns the server's pid, or 0 when it is not running.
func (r *Redis) PID() int {
	if proc := r.current(); proc != nil && !proc.exited() {
		return proc.pid
	}
	return 0
}

// Exited returns a channel closed when the current server process has exited
// and been reaped (already closed when it is not running). After a Start,
// call it again to get the new process's channel.
func (r *Redis) Exited() <-chan struct{} {
	if proc := r.current(); proc != nil {
		return proc.done
	}
	return closedChan
}

// Kill sends SIGKILL to the server (and any AOF-rewrite child: its process
// group) and waits until it is reaped. Killing a server that is not running
// is a no-op.
func (r *Redis) Kill() error {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	proc := r.current()
	if proc == nil || proc.exited() {
		return nil
	}
	if err := proc.kill(); err != nil {
		return fmt.Errorf("redis: kill: %w", err)
	}
	logf(r.opts.Logf, "redis on port %d killed", r.port)
	return nil
}

// Start starts the server again on the same directory, port and AOF after
// Stop or Kill. It returns once PING answers and the AOF has been loaded; ctx
// bounds the wait (60 s if it has no deadline). It fails if the server is
// running or closed.
func (r *Redis) Start(ctx context.Context) error {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.mu.Lock()
	closed, proc := r.closed, r.proc
	r.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if proc != nil && !proc.exited() {
		return fmt.Errorf("redis: already running (pid %d)", proc.pid)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	proc, _, err := r.launch(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.proc = proc
	r.mu.Unlock()
	logf(r.opts.Logf, "redis restarted on port %d (pid %d)", r.port, proc.pid)
	return nil
}

// Stop shuts the server down gracefully (SIGTERM: the AOF is flushed and
// fsynced) and waits for it to exit. A paused server is resumed first.
// Stopping a server that is not running is a no-op.
func (r *Redis) Stop(ctx context.Context) error {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	return r.stop(ctx)
}

func (r *Redis) stop(ctx context.Context) error {
	proc := r.current()
	if proc == nil || proc.exited() {
		return nil
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := proc.resume(); err != nil { // in case it is paused
		return fmt.Errorf("redis: stop: %w", err)
	}
	if err := proc.signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("redis: stop: %w", err)
	}
	if err := proc.wait(ctx); err != nil {
		return fmt.Errorf("redis: stop: %w", err)
	}
	logf(r.opts.Logf, "redis on port %d stopped: %s", r.port, proc.exitDescription())
	return nil
}

// Pause sends SIGSTOP to the server's process group: connections stay open
// but nothing is answered until Resume.
func (r *Redis) Pause() error { return r.signalRunning((*process).pause) }

// Resume sends SIGCONT to the server's process group.
func (r *Redis) Resume() error { return r.signalRunning((*process).resume) }

func (r *Redis) signalRunning(op func(*process) error) error {
	proc := r.current()
	if proc == nil || proc.exited() {
		return ErrNotRunning
	}
	return op(proc)
}

// Close kills the server and removes its directory. It is idempotent.
func (r *Redis) Close() error {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	proc := r.proc
	r.mu.Unlock()

	var errs []error
	if proc != nil && !proc.exited() {
		if err := proc.kill(); err != nil {
			errs = append(errs, fmt.Errorf("redis: kill: %w", err))
		}
	}
	if err := os.RemoveAll(r.dir); err != nil {
		errs = append(errs, fmt.Errorf("redis: remove %s: %w", r.dir, err))
	}
	releasePort(r.port)
	return errors.Join(errs...)
}
