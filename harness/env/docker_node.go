package env

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/chronicleweaver/chronicleweaver/service/devenv"
)

// One container of the docker backend: readiness, state, usage and logs.

// --- readiness ---

// waitReady polls n until it answers (a service: GET /ready 200; Redis:
// PING; PostgreSQL: connect and ping), its container stops, or ctx ends
// (60 s when it has no deadline). While n's link is cut it cannot be reached
// from the host: it is then probed from inside its container.
func (d *Docker) waitReady(ctx context.Context, n *dnode) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWait)
		defer cancel()
	}
	start := time.Now()
	last := "no answer yet"
	for i, delay := 0, 10*time.Millisecond; ; i, delay = i+1, min(2*delay, 250*time.Millisecond) {
		err := d.probe(ctx, n)
		if err == nil {
			d.logf("env: %s ready in %v", n.name, time.Since(start).Round(time.Millisecond))
			return nil
		}
		last = err.Error()
		if i%4 == 3 {
			st, ierr := d.state(ctx, n)
			if ierr == nil && !st.Running && !st.Restarting {
				return fmt.Errorf("env: %s exited (code %d) before it was ready (last probe: %s)%s", n.name, st.ExitCode, last, d.logTail(n))
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("env: %s not ready after %v (%v; last probe: %s)%s", n.name, time.Since(start).Round(time.Millisecond), ctx.Err(), last, d.logTail(n))
		case <-t.C:
		}
	}
}

func (d *Docker) probe(ctx context.Context, n *dnode) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	n.mu.Lock()
	cut := n.cut
	n.mu.Unlock()
	if cut {
		cmd := []string{"redis-cli", "ping"}
		if n == d.pg {
			cmd = []string{"pg_isready", "-h", "127.0.0.1", "-U", dockerPGUser, "-d", chronicleDB}
		}
		code, err := d.exec(ctx, n.containerID(), cmd)
		if err == nil && code != 0 {
			err = fmt.Errorf("%s exited %d", cmd[0], code)
		}
		return err
	}
	switch n {
	case d.pg:
		conn, err := pgx.Connect(ctx, d.dbURL)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return conn.Ping(ctx)
	case d.redis:
		return devenv.PingRedis(ctx, n.hostAddr())
	}
	if ok, answer := probeReady(ctx, "http://"+n.hostAddr(), readyPath(d.opts.Subject)); !ok {
		return errors.New(answer)
	}
	return nil
}

// exec runs cmd in container id and returns its exit code.
func (d *Docker) exec(ctx context.Context, id string, cmd []string) (int, error) {
	res, err := d.cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd})
	if err != nil {
		return 0, err
	}
	if _, err := d.cli.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return 0, err
	}
	for {
		ins, err := d.cli.ExecInspect(ctx, res.ID, client.ExecInspectOptions{})
		if err != nil {
			return 0, err
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// --- node state ---

func (d *Docker) state(ctx context.Context, n *dnode) (*container.State, error) {
	id := n.containerID()
	if id == "" {
		return nil, fmt.Errorf("env: %s has no container", n.name)
	}
	res, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("env: inspect %s: %w", n.name, err)
	}
	if res.Container.State == nil {
		return nil, fmt.Errorf("env: inspect %s: no state", n.name)
	}
	return res.Container.State, nil
}

// --- usage ---

// Usage reports a service node's CPU seconds (user + system, summed over
// its container's lifetimes; a lifetime counts up to the last reading,
// which Kill, Terminate and Restart take just before they stop it) and its
// peak memory in bytes, from docker stats: the cgroup's max_usage (cgroup
// v1; it includes page cache) or, on cgroup v2, the largest usage read.
func (d *Docker) Usage(node string) (cpuSeconds float64, peakRSS int64, err error) {
	n := d.node(node)
	if n == nil {
		return 0, 0, unknownNode(node, d.Nodes())
	}
	if !d.isService(n) {
		return 0, 0, fmt.Errorf("env: usage of %s: only service nodes are measured: %w", node, ErrUnsupported)
	}
	if d.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
		d.sample(ctx, n)
		cancel()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cpuDone + n.lastCPU, n.peakMem, nil
}

// sample reads n's current CPU and memory from docker stats (no-op when it
// does not run).
func (d *Docker) sample(ctx context.Context, n *dnode) {
	id := n.containerID()
	if id == "" {
		return
	}
	res, err := d.cli.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: false})
	if err != nil {
		return
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return
	}
	cpu := float64(s.CPUStats.CPUUsage.TotalUsage) / 1e9
	mem := int64(s.MemoryStats.MaxUsage)
	if mem == 0 {
		mem = int64(s.MemoryStats.Usage)
	}
	n.mu.Lock()
	n.lastCPU = max(n.lastCPU, cpu)
	n.peakMem = max(n.peakMem, mem)
	n.mu.Unlock()
}

// lifetimeEnded moves the current lifetime's CPU to the finished total.
func (d *Docker) lifetimeEnded(n *dnode) {
	n.mu.Lock()
	n.cpuDone += n.lastCPU
	n.lastCPU = 0
	n.mu.Unlock()
}

// --- logs ---

// logTail returns "\n--- last lines of NODE ---\n..." from n's container
// log, or "".
func (d *Docker) logTail(n *dnode) string {
	id := n.containerID()
	if id == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := d.copyLogs(ctx, id, &buf, "25"); err != nil || buf.Len() == 0 {
		return ""
	}
	return "\n--- last lines of " + n.name + " ---\n" + strings.TrimRight(buf.String(), "\n")
}

// ServiceLog returns service node's container log (stdout and stderr,
// every lifetime of the container).
func (d *Docker) ServiceLog(ctx context.Context, node string) ([]byte, error) {
	n := d.node(node)
	if n == nil || n == d.pg || n == d.redis || n.containerID() == "" {
		return nil, unknownNode(node, d.Nodes())
	}
	var buf bytes.Buffer
	if err := d.copyLogs(ctx, n.containerID(), &buf, "all"); err != nil {
		return nil, fmt.Errorf("env: log of %s: %w", node, err)
	}
	return buf.Bytes(), nil
}

// copyLogs writes the container's stdout and stderr (every lifetime) to w.
func (d *Docker) copyLogs(ctx context.Context, id string, w io.Writer, tail string) error {
	rc, err := d.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(w, w, rc)
	return err
}
