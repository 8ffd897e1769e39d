// Package env starts and controls the system under test: PostgreSQL, Redis
// and one or more service instances (Jepsen's "db" role).
//
// Backends:
//   - local (default): PostgreSQL and Redis as local processes started by
//     service/devenv, service instances as child processes of the harness
//     (local.go, local_faults.go, instance.go, build.go); both kinds of
//     process go through internal/proc and take their ports from its one
//     registry;
//   - external: an already running service at a URL (faults unsupported);
//   - docker: containers through testcontainers-go (docker.go,
//     docker_faults.go, docker_node.go; images in docker_image.go).
//
// Every fault is a method of Env on a node name, so the nemesis needs
// nothing else.
package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Node names.
const (
	Postgres = "postgres"
	Redis    = "redis"
)

// ServiceNode is the name of service instance i: "service-0", "service-1", ...
func ServiceNode(i int) string { return "service-" + itoa(i) }

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// ErrUnsupported is returned for a fault the backend cannot inject.
var ErrUnsupported = errors.New("env: not supported by this backend")

// LinkMode is the state of the network path from the services to a dependency.
type LinkMode string

// Link modes.
const (
	LinkOK        LinkMode = "ok"        // pass traffic
	LinkCut       LinkMode = "cut"       // close every connection, refuse new ones
	LinkBlackhole LinkMode = "blackhole" // accept, but pass nothing in either direction
	LinkSlow      LinkMode = "slow"      // pass traffic with added latency
	// LinkReplyLost: each open connection's next reply is discarded and the
	// connection reset, after the server carried the command out.
	LinkReplyLost LinkMode = "reply-lost"
)

// Env is a running system under test.
type Env interface {
	// Targets are the base URLs of the service instances, in node order.
	Targets() []string
	// DatabaseURL is where the checker reads stored events back ("" when
	// unknown: it then walks GET /events).
	DatabaseURL() string
	// Nodes lists what faults can target: service-N, redis, postgres.
	Nodes() []string

	// Kill stops a node abruptly: SIGKILL for a service or Redis, an
	// immediate shutdown for PostgreSQL.
	Kill(ctx context.Context, node string) error
	// Terminate stops a node gracefully (SIGTERM) and waits for it to exit.
	Terminate(ctx context.Context, node string) error
	// Restart starts a stopped node again (a running one is killed first)
	// and returns once it is ready.
	Restart(ctx context.Context, node string) error
	// Pause freezes a node (SIGSTOP or docker pause); Resume thaws it.
	Pause(ctx context.Context, node string) error
	Resume(ctx context.Context, node string) error
	// SetLink changes the network path from the services to a dependency
	// (Redis or Postgres); latency applies to LinkSlow.
	SetLink(ctx context.Context, dep string, mode LinkMode, latency time.Duration) error
	// FillDisk fills the small filesystem a dependency's data is on (Redis:
	// its AOF directory; PostgreSQL: its data directory), so that the
	// server's next writes fail for want of space; FreeDisk deletes what
	// filled it. Only a dependency started on such a filesystem has one
	// (LocalOptions.RedisDisk, PostgresDisk); otherwise the error wraps
	// ErrUnsupported.
	FillDisk(ctx context.Context, dep string) error
	FreeDisk(ctx context.Context, dep string) error

	// ServiceLog returns what a service node wrote to its log (JSON lines)
	// over all its lifetimes in this environment: what the harness reads
	// to see that a fault had its effect.
	ServiceLog(ctx context.Context, node string) ([]byte, error)

	// Usage reports a service node's CPU seconds and peak RSS in bytes.
	Usage(node string) (cpuSeconds float64, peakRSS int64, err error)
	// Info describes the environment for report headers.
	Info() Info
	// Close stops and removes everything the backend started.
	Close() error
}

// Info describes the environment.
type Info struct {
	Backend         string            `json:"backend"`
	Services        int               `json:"services"`
	PostgresVersion string            `json:"postgres_version,omitempty"`
	RedisVersion    string            `json:"redis_version,omitempty"`
	Settings        map[string]string `json:"settings,omitempty"` // service environment (no secrets)
	// PostgresDurable: PostgreSQL runs with fsync on (local backend).
	PostgresDurable bool `json:"postgres_durable,omitempty"`
	// RedisPersistence is "aof everysec", "aof always" or "none" (the
	// planted NoAOF bug); empty when unknown.
	RedisPersistence string `json:"redis_persistence,omitempty"`
	// Proxied: the services reach Redis and PostgreSQL through fault proxies.
	Proxied bool `json:"proxied,omitempty"`
}

// clone returns a copy of i that shares no map with it.
func (i Info) clone() Info {
	settings := i.Settings
	i.Settings = make(map[string]string, len(settings))
	for k, v := range settings {
		i.Settings[k] = v
	}
	return i
}

// infoSettings are the service settings as Info reports them: LOG_LEVEL
// (info unless set), no URLs, and secrets (TOKEN, SECRET, PASSWORD in the
// name) redacted.
func infoSettings(settings map[string]string) map[string]string {
	out := map[string]string{"LOG_LEVEL": "info"}
	for k, v := range settings {
		switch {
		case strings.HasSuffix(k, "_URL"):
			continue
		case strings.Contains(k, "TOKEN"), strings.Contains(k, "SECRET"), strings.Contains(k, "PASSWORD"):
			v = "(redacted)"
		}
		out[k] = v
	}
	return out
}

func unknownNode(node string, nodes []string) error {
	return fmt.Errorf("env: unknown node %q (nodes: %s)", node, strings.Join(nodes, ", "))
}

// reservedSettings are chosen by the backend.
var reservedSettings = []string{"APP_PORT", "DATABASE_URL", "REDIS_URL", "INSTANCE_ID"}

// checkServices checks the options every backend has: at least one
// service, and settings that are environment variable names the backend
// does not choose itself. optsType names the options in errors.
func checkServices(optsType, backend string, services int, settings map[string]string) error {
	if services < 1 {
		return fmt.Errorf("env: %s.Services = %d: need at least 1", optsType, services)
	}
	for k := range settings {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("env: invalid setting name %q", k)
		}
		for _, r := range reservedSettings {
			if k == r {
				return fmt.Errorf("env: setting %s is chosen by the %s backend and cannot be set", k, backend)
			}
		}
	}
	return nil
}

// makeRunDir creates dir if missing ("": a new temporary directory) and
// returns its absolute path.
func makeRunDir(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "chronicle-run-"); err != nil {
			return "", fmt.Errorf("env: create run directory: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("env: create run directory: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("env: run directory: %w", err)
	}
	return abs, nil
}

// lifetime is what the backends share from start to Close: a context that
// Close cancels, which ends the operations in progress, the result of the
// one close, and where lifecycle messages go.
type lifetime struct {
	ctx      context.Context
	cancel   context.CancelFunc
	once     sync.Once // of the close
	closeErr error
	logTo    func(format string, args ...any) // may be nil
}

func (lt *lifetime) begin(logf func(format string, args ...any)) {
	lt.ctx, lt.cancel = context.WithCancel(context.Background())
	lt.logTo = logf
}

func (lt *lifetime) logf(format string, args ...any) {
	if lt.logTo != nil {
		lt.logTo(format, args...)
	}
}

// opCtx returns ctx, also cancelled when the backend is closed.
func (lt *lifetime) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(lt.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// startCtx is opCtx for a start, bounded by limit when ctx has no deadline.
func (lt *lifetime) startCtx(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := lt.opCtx(ctx)
	if _, ok := ctx.Deadline(); ok {
		return ctx, cancel
	}
	ctx, stop := context.WithTimeout(ctx, limit)
	return ctx, func() { stop(); cancel() }
}

// closeOnce runs close the first time and returns its result every time.
func (lt *lifetime) closeOnce(close func() error) error {
	lt.once.Do(func() { lt.closeErr = close() })
	return lt.closeErr
}
