// Package env starts and controls the system under test: PostgreSQL, Redis
// and one or more service instances (Jepsen's "db" role).
//
// Backends:
//   - local (default): PostgreSQL and Redis as local processes started by
//     service/devenv, service instances as child processes of the harness;
//   - external: an already running service at a URL (faults unsupported);
//   - docker: containers through testcontainers-go (see docker.go when built).
//
// Every fault is a method of Env on a node name, so the nemesis needs
// nothing else.
package env

import (
	"context"
	"errors"
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
