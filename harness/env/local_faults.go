package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/chronicleweaver/chronicleweaver/internal/proc"
)

// The local backend's faults and measurements: every one on a node name.

// --- node dispatch ---

func (l *Local) svc(node string) *instance {
	for _, s := range l.services {
		if s.name == node {
			return s
		}
	}
	return nil
}

func (l *Local) unknown(node string) error { return unknownNode(node, l.Nodes()) }

var errClosed = errors.New("env: the environment is closed")

// onNode runs operation op on node, with ctx also cancelled by Close: redis
// or pg on Redis or PostgreSQL (their errors wrapped with op and the node),
// svc on a service instance, holding its opMu.
func (l *Local) onNode(ctx context.Context, node, op string, redis, pg func(context.Context) error,
	svc func(context.Context, *instance) error) error {
	if l.ctx.Err() != nil {
		return errClosed
	}
	ctx, cancel := l.opCtx(ctx)
	defer cancel()
	switch node {
	case Redis:
		return wrapNode(node, op, redis(ctx))
	case Postgres:
		return wrapNode(node, op, pg(ctx))
	}
	s := l.svc(node)
	if s == nil {
		return l.unknown(node)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	return svc(ctx, s)
}

// Kill: SIGKILL to a service's process group (then reaped), SIGKILL to
// Redis, an immediate shutdown (no checkpoint) of PostgreSQL. Killing a
// stopped node is a no-op.
func (l *Local) Kill(ctx context.Context, node string) error {
	return l.onNode(ctx, node, "kill",
		func(context.Context) error { return l.redis.Kill() },
		l.pg.StopImmediate,
		func(ctx context.Context, s *instance) error {
			if p := s.running(); p != nil {
				if err := p.Kill(ctx); err != nil {
					return wrapNode(node, "kill", err)
				}
				l.logf("env: %s killed (pid %d)", node, p.PID())
			}
			return nil
		})
}

// Terminate stops a node gracefully and waits for it: SIGTERM to a service
// (an error if it does not exit 0 within SHUTDOWN_TIMEOUT + 5 s; it is then
// killed), a graceful stop of Redis, a fast shutdown of PostgreSQL.
func (l *Local) Terminate(ctx context.Context, node string) error {
	return l.onNode(ctx, node, "terminate", l.redis.Stop, l.pg.Stop,
		func(ctx context.Context, s *instance) error {
			p := s.running()
			if p == nil {
				return nil
			}
			limit := l.shutdown + 5*time.Second
			start := time.Now()
			if err := p.Terminate(ctx, syscall.SIGTERM, limit); err != nil {
				return fmt.Errorf("env: terminate %s: %w%s", node, err, logTail(p.Log()))
			}
			if st := p.State(); !st.Success() {
				return fmt.Errorf("env: terminate %s: %s after SIGTERM (exit code %d)%s", node, st, st.ExitCode(), logTail(p.Log()))
			}
			l.logf("env: %s terminated in %v", node, time.Since(start).Round(time.Millisecond))
			return nil
		})
}

// Restart starts a node again (killing it first if it runs) and returns
// once it is ready: a service answers /ready with 200, Redis has loaded its
// AOF, PostgreSQL accepts connections.
func (l *Local) Restart(ctx context.Context, node string) error {
	return l.onNode(ctx, node, "restart",
		func(ctx context.Context) error {
			if l.redis.PID() != 0 {
				if err := l.redis.Kill(); err != nil {
					return err
				}
			}
			return l.redis.Start(ctx)
		},
		func(ctx context.Context) error {
			if l.pg.PID() != 0 {
				if err := l.pg.StopImmediate(ctx); err != nil {
					return err
				}
			}
			return l.pg.Start(ctx)
		},
		func(ctx context.Context, s *instance) error {
			if p := s.running(); p != nil {
				if err := p.Kill(ctx); err != nil {
					return wrapNode(node, "restart", err)
				}
			}
			return l.startService(ctx, s, false)
		})
}

// Pause freezes a node with SIGSTOP (a service's process group; devenv's
// Pause for Redis and PostgreSQL) and returns once every thread of it is
// stopped: kill(2) only queues the signal. It fails if the node is not
// running.
func (l *Local) Pause(ctx context.Context, node string) error {
	return l.signalNode(ctx, node, "pause", (*proc.Process).Pause, l.redis.Pause, l.pg.Pause)
}

// Resume thaws a paused node with SIGCONT.
func (l *Local) Resume(ctx context.Context, node string) error {
	return l.signalNode(ctx, node, "resume", (*proc.Process).Resume, l.redis.Resume, l.pg.Resume)
}

// signalNode applies op (Pause or Resume) to a service's process; redis and
// pg do the same for Redis and PostgreSQL.
func (l *Local) signalNode(ctx context.Context, node, name string, op func(*proc.Process) error, redis, pg func() error) error {
	return l.onNode(ctx, node, name,
		func(context.Context) error { return redis() },
		func(context.Context) error { return pg() },
		func(_ context.Context, s *instance) error {
			p := s.running()
			if p == nil {
				return fmt.Errorf("env: %s %s: not running", name, node)
			}
			if err := op(p); err != nil {
				return fmt.Errorf("env: %s %s: %w", name, node, err)
			}
			return nil
		})
}

// SetLink sets the fault proxy between the services and dep (redis or
// postgres). It needs LocalOptions.Proxy; without it the error wraps
// ErrUnsupported.
func (l *Local) SetLink(ctx context.Context, dep string, mode LinkMode, latency time.Duration) error {
	if l.ctx.Err() != nil {
		return errClosed
	}
	var p *Proxy
	switch dep {
	case Redis:
		p = l.rdProxy
	case Postgres:
		p = l.pgProxy
	default:
		return fmt.Errorf("env: SetLink: %q is not a dependency (redis, postgres)", dep)
	}
	if p == nil {
		return fmt.Errorf("env: SetLink %s: the services do not go through proxies (set LocalOptions.Proxy): %w", dep, ErrUnsupported)
	}
	if err := p.SetMode(mode, latency); err != nil {
		return fmt.Errorf("env: SetLink %s: %w", dep, err)
	}
	l.logf("env: link to %s: %s %v", dep, mode, latency)
	return nil
}

// FillDisk fills the tmpfs dep's data is on (LocalOptions.RedisDisk,
// PostgresDisk) with a ballast file until it refuses more, and checks that
// it is full: the server's next write that needs space fails with ENOSPC.
func (l *Local) FillDisk(_ context.Context, dep string) error {
	d, err := l.disk(dep, "fill")
	if err != nil {
		return err
	}
	n, err := d.fill()
	if err != nil {
		return err
	}
	l.logf("env: disk of %s filled (ballast of %d bytes)", dep, n)
	return nil
}

// FreeDisk deletes the ballast FillDisk wrote and checks that space is
// back.
func (l *Local) FreeDisk(_ context.Context, dep string) error {
	d, err := l.disk(dep, "free")
	if err != nil {
		return err
	}
	left, err := d.empty()
	if err != nil {
		return err
	}
	l.logf("env: disk of %s freed (%d bytes free)", dep, left)
	return nil
}

// disk is dep's small filesystem, or an error wrapping ErrUnsupported.
func (l *Local) disk(dep, op string) (*disk, error) {
	if l.ctx.Err() != nil {
		return nil, errClosed
	}
	var d *disk
	switch dep {
	case Redis:
		d = l.redisDisk
	case Postgres:
		d = l.pgDisk
	default:
		return nil, fmt.Errorf("env: %s the disk of %q: not a dependency (redis, postgres)", op, dep)
	}
	if d == nil {
		return nil, fmt.Errorf("env: %s the disk of %s: it was not started on a small filesystem (set LocalOptions.%sDisk): %w",
			op, dep, map[string]string{Redis: "Redis", Postgres: "Postgres"}[dep], ErrUnsupported)
	}
	return d, nil
}

func wrapNode(node, op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("env: %s %s: %w", op, node, err)
}

// --- logs ---

// ServiceLog returns service node's log file in RunDir, every lifetime
// appended.
func (l *Local) ServiceLog(_ context.Context, node string) ([]byte, error) {
	s := l.svc(node)
	if s == nil {
		return nil, l.unknown(node)
	}
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("env: log of %s: %w", node, err)
	}
	return b, nil
}

// --- usage ---

// Usage reports a service node's CPU seconds (user + system, summed over
// all its process lifetimes so far, each with its descendants) and peak RSS
// in bytes (the maximum over them). Ended lifetimes count through their
// rusage, the running one through /proc (see proc.Process.Usage).
func (l *Local) Usage(node string) (cpuSeconds float64, peakRSS int64, err error) {
	s := l.svc(node)
	if s == nil {
		if node == Redis || node == Postgres {
			return 0, 0, fmt.Errorf("env: usage of %s: only service nodes are measured: %w", node, ErrUnsupported)
		}
		return 0, 0, l.unknown(node)
	}
	u := s.usage()
	return u.CPUSeconds(), u.PeakRSS, nil
}
