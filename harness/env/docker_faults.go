package env

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// The docker backend's faults, each on a node name, through the Docker API.

// --- faults ---

// Kill sends SIGKILL to node's container (PostgreSQL too: a crash, recovered
// from the WAL at the next start) and waits until it has stopped. A paused
// container is thawed first; killing a stopped node is a no-op.
func (d *Docker) Kill(ctx context.Context, node string) error {
	return d.onNode(ctx, node, func(ctx context.Context, n *dnode) error {
		return wrapNode(node, "kill", d.kill(ctx, n))
	})
}

// kill SIGKILLs n if it runs. The caller holds n.opMu.
func (d *Docker) kill(ctx context.Context, n *dnode) error {
	st, err := d.readyToStop(ctx, n)
	if err != nil || !st.Running {
		return err
	}
	if _, err := d.cli.ContainerKill(ctx, n.containerID(), client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		return err
	}
	if _, err := d.waitStopped(ctx, n); err != nil {
		return err
	}
	d.lifetimeEnded(n)
	d.logf("env: %s killed", n.name)
	return nil
}

// readyToStop returns n's state and, when n runs, prepares it to be
// stopped: a service's usage is sampled a last time, and a paused container
// is thawed. The caller holds n.opMu.
func (d *Docker) readyToStop(ctx context.Context, n *dnode) (*container.State, error) {
	st, err := d.state(ctx, n)
	if err != nil || !st.Running {
		return st, err
	}
	if d.isService(n) {
		d.sample(ctx, n)
	}
	if st.Paused {
		if _, err := d.cli.ContainerUnpause(ctx, n.containerID(), client.ContainerUnpauseOptions{}); err != nil {
			return nil, err
		}
		n.mu.Lock()
		n.holed = false
		n.mu.Unlock()
	}
	return st, nil
}

// waitStopped waits until n's container is not running and returns its
// exit code.
func (d *Docker) waitStopped(ctx context.Context, n *dnode) (int64, error) {
	w := d.cli.ContainerWait(ctx, n.containerID(), client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-w.Result:
		if r.Error != nil && r.Error.Message != "" {
			return r.StatusCode, errors.New(r.Error.Message)
		}
		return r.StatusCode, nil
	case err := <-w.Error:
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Terminate stops node gracefully and waits for it: SIGTERM (SIGINT, a fast
// shutdown, for PostgreSQL), SIGKILL after a grace period (a service:
// SHUTDOWN_TIMEOUT + 5 s; an error if it was needed or the service did not
// exit 0). Terminating a stopped node is a no-op.
func (d *Docker) Terminate(ctx context.Context, node string) error {
	return d.onNode(ctx, node, func(ctx context.Context, n *dnode) error {
		grace := 30 * time.Second
		if d.isService(n) {
			grace = d.shutdown + 5*time.Second
		}
		start := time.Now()
		code, err := d.terminate(ctx, n, grace)
		if err != nil {
			return wrapNode(node, "terminate", err)
		}
		if d.isService(n) && code != 0 {
			return fmt.Errorf("env: terminate %s: exit code %d after SIGTERM%s", node, code, d.logTail(n))
		}
		d.logf("env: %s terminated in %v", node, time.Since(start).Round(time.Millisecond))
		return nil
	})
}

// terminate stops n with its stop signal and returns the exit code; past
// grace Docker kills it and terminate fails. The caller holds n.opMu.
func (d *Docker) terminate(ctx context.Context, n *dnode, grace time.Duration) (int64, error) {
	st, err := d.readyToStop(ctx, n)
	if err != nil {
		return 0, err
	}
	if !st.Running {
		return int64(st.ExitCode), nil
	}
	signal := "SIGTERM"
	if n == d.pg {
		signal = "SIGINT" // fast shutdown; SIGTERM waits for every client to leave
	}
	secs := int(grace.Round(time.Second) / time.Second)
	start := time.Now()
	if _, err := d.cli.ContainerStop(ctx, n.containerID(), client.ContainerStopOptions{Signal: signal, Timeout: &secs}); err != nil {
		return 0, err
	}
	d.lifetimeEnded(n)
	st, err = d.state(ctx, n)
	if err != nil {
		return 0, err
	}
	if time.Since(start) >= grace {
		return int64(st.ExitCode), fmt.Errorf("did not exit within %v of %s: killed", grace, signal)
	}
	return int64(st.ExitCode), nil
}

// Restart starts node again (killing it first if it runs) and returns once
// it answers: a service GET /ready with 200, Redis PING (after loading its
// AOF), PostgreSQL a connection and ping. Ports stay the same.
func (d *Docker) Restart(ctx context.Context, node string) error {
	return d.onNode(ctx, node, func(ctx context.Context, n *dnode) error {
		if err := d.kill(ctx, n); err != nil {
			return wrapNode(node, "restart", err)
		}
		if _, err := d.cli.ContainerStart(ctx, n.containerID(), client.ContainerStartOptions{}); err != nil {
			return wrapNode(node, "restart", err)
		}
		return d.waitReady(ctx, n)
	})
}

// Pause freezes node's container (docker pause). It fails if the node is
// not running.
func (d *Docker) Pause(ctx context.Context, node string) error {
	return d.onNode(ctx, node, func(ctx context.Context, n *dnode) error {
		_, err := d.cli.ContainerPause(ctx, n.containerID(), client.ContainerPauseOptions{})
		return wrapNode(node, "pause", err)
	})
}

// Resume thaws a paused node (docker unpause).
func (d *Docker) Resume(ctx context.Context, node string) error {
	return d.onNode(ctx, node, func(ctx context.Context, n *dnode) error {
		_, err := d.cli.ContainerUnpause(ctx, n.containerID(), client.ContainerUnpauseOptions{})
		return wrapNode(node, "resume", err)
	})
}

// SetLink changes the path from the services to dep (redis or postgres):
// LinkCut disconnects dep's container from the network (its name no longer
// resolves, packets to it go nowhere; the host loses it too), LinkBlackhole
// pauses it (connections are accepted and data taken in by the kernel, but
// nothing answers), LinkOK undoes either. LinkSlow and LinkReplyLost return
// an error wrapping ErrUnsupported: the containers talk to each other
// directly, with no proxy in between to delay or discard replies. Blackhole and Pause share the freezer: LinkOK thaws a
// node paused either way.
func (d *Docker) SetLink(ctx context.Context, dep string, mode LinkMode, latency time.Duration) error {
	if dep != Redis && dep != Postgres {
		return fmt.Errorf("env: SetLink: %q is not a dependency (redis, postgres)", dep)
	}
	switch mode {
	case LinkSlow:
		return fmt.Errorf("env: SetLink %s: added latency needs tc in the container: %w", dep, ErrUnsupported)
	case LinkReplyLost:
		return fmt.Errorf("env: SetLink %s: losing replies needs a proxy between the containers, which the docker backend has not (use the local backend): %w", dep, ErrUnsupported)
	}
	return d.onNode(ctx, dep, func(ctx context.Context, n *dnode) error { return d.setLink(ctx, n, mode) })
}

// setLink is SetLink on dependency n. The caller holds n.opMu.
func (d *Docker) setLink(ctx context.Context, n *dnode, mode LinkMode) error {
	dep := n.name
	n.mu.Lock()
	cut, holed := n.cut, n.holed
	n.mu.Unlock()
	id := n.containerID()
	var errs []error
	wantCut, wantHole := mode == LinkCut, mode == LinkBlackhole
	switch mode {
	case LinkOK, LinkCut, LinkBlackhole:
	default:
		return fmt.Errorf("env: SetLink %s: unknown mode %q", dep, mode)
	}
	if holed && !wantHole {
		if _, err := d.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
			errs = append(errs, err)
		} else {
			holed = false
		}
	}
	if cut && !wantCut {
		_, err := d.cli.NetworkConnect(ctx, d.net.ID, client.NetworkConnectOptions{
			Container:      id,
			EndpointConfig: &dnetwork.EndpointSettings{Aliases: []string{n.name}},
		})
		if err != nil {
			errs = append(errs, err)
		} else {
			cut = false
		}
	}
	if wantCut && !cut {
		if _, err := d.cli.NetworkDisconnect(ctx, d.net.ID, client.NetworkDisconnectOptions{Container: id, Force: true}); err != nil {
			errs = append(errs, err)
		} else {
			cut = true
		}
	}
	if wantHole && !holed {
		if _, err := d.cli.ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
			errs = append(errs, err)
		} else {
			holed = true
		}
	}
	n.mu.Lock()
	n.cut, n.holed = cut, holed
	n.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("env: SetLink %s %s: %w", dep, mode, err)
	}
	d.logf("env: link to %s: %s", dep, mode)
	return nil
}

// FillDisk and FreeDisk are not supported by the docker backend: its
// containers' data is on the Docker host's disk, with no small filesystem
// of the harness's to fill (a scenario that needs one is skipped on it).
func (d *Docker) FillDisk(_ context.Context, dep string) error {
	return fmt.Errorf("env: fill the disk of %s: the docker backend mounts no small filesystem for it (use the local backend): %w", dep, ErrUnsupported)
}

// FreeDisk: see FillDisk.
func (d *Docker) FreeDisk(_ context.Context, dep string) error {
	return fmt.Errorf("env: free the disk of %s: the docker backend mounts no small filesystem for it (use the local backend): %w", dep, ErrUnsupported)
}
