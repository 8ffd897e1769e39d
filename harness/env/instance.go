package env

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/chronicleweaver/chronicleweaver/internal/proc"
)

// instance is one service instance of the local backend: a command run as
// a child process leading a process group of its own, on a port that stays
// the same across restarts (reserved in proc's port registry from
// StartLocal to Close, also while the instance is down, so that no server
// started meanwhile is given it), its output appended to one log across
// lifetimes. What it runs is a parameter of start: our binary by default,
// but any program that speaks the service's environment contract runs the
// same way, and every fault (SIGKILL, SIGTERM with the drain limit,
// SIGSTOP/SIGCONT, restart) applies to it alike.
type instance struct {
	name    string
	port    int // fixed after StartLocal; restarts reuse it
	logPath string
	// ready is the readiness path polled after a start: a path, or "auto"
	// (/ready, and /health where /ready answers 404).
	ready string

	opMu sync.Mutex // serialises start, kill, terminate, restart

	mu    sync.Mutex    // guards the fields below
	cur   *proc.Process // current or last lifetime; nil before the first
	ended proc.Usage    // of the lifetimes before cur
}

func (s *instance) url() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

func (s *instance) current() *proc.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// running is the current lifetime if it runs, else nil.
func (s *instance) running() *proc.Process {
	if p := s.current(); p != nil && !p.Exited() {
		return p
	}
	return nil
}

// usage is the CPU time of every lifetime so far, and the largest peak RSS
// among them (each lifetime's: the process and its descendants).
func (s *instance) usage() proc.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.ended
	if s.cur != nil {
		u = u.Add(s.cur.Usage())
	}
	return u
}

// start launches s with the command that command returns (built again for
// each attempt: it holds the port) and waits until it answers GET /ready
// with 200. On a first start a port lost to another program is replaced
// (up to 3 tries); restarts keep the port. The caller holds s.opMu.
func (s *instance) start(ctx context.Context, command func() proc.Command, first bool, logf func(string, ...any)) error {
	for attempt := 1; ; attempt++ {
		p, err := s.launch(command())
		if err != nil {
			return err
		}
		err = s.waitReady(ctx, p)
		if err == nil {
			logf("env: %s ready on %s (pid %d)", s.name, s.url(), p.PID())
			return nil
		}
		_ = p.Kill(context.Background())
		if first && attempt < 3 && p.Log().ContainsFold("address already in use") {
			port, perr := proc.ReservePort()
			if perr != nil {
				return err
			}
			proc.ReleasePorts(s.port)
			s.port = port
			logf("env: %s could not bind its port, retrying on %d", s.name, s.port)
			continue
		}
		return err
	}
}

// launch starts one lifetime of s running cmd, in a process group of its
// own, its output appended to s's log. The previous lifetime, which has
// ended, is added to s's usage.
func (s *instance) launch(cmd proc.Command) (*proc.Process, error) {
	cmd.Log = s.logPath
	cmd.Group = true
	p, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("env: start %s (%s): %w", s.name, cmd.Path, err)
	}
	s.mu.Lock()
	if s.cur != nil {
		s.ended = s.ended.Add(s.cur.Usage())
	}
	s.cur = p
	s.mu.Unlock()
	return p, nil
}

var probeClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// waitReady polls the readiness path (GET /ready by default) until it
// answers 200, the process exits or ctx ends (60 s when ctx has no
// deadline). The error names the instance and ends with its last log lines.
func (s *instance) waitReady(ctx context.Context, p *proc.Process) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWait)
		defer cancel()
	}
	start := time.Now()
	last := "no answer yet"
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		ok, answer := probeReady(ctx, s.url(), s.ready)
		if ok {
			return nil
		}
		last = answer
		t := time.NewTimer(delay)
		select {
		case <-p.Done():
			t.Stop()
			return fmt.Errorf("env: %s %s before it was ready%s", s.name, p.State(), logTail(p.Log()))
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("env: %s not ready after %v (%v; last probe: %s)%s", s.name, time.Since(start).Round(time.Millisecond), ctx.Err(), last, logTail(p.Log()))
		case <-t.C:
		}
	}
}

// probeReady GETs base+path once ("auto" or "": /ready, then /health when
// /ready answers 404) and reports whether it answered 200, with a short
// account of the answer.
func probeReady(ctx context.Context, base, path string) (bool, string) {
	auto := path == "" || path == "auto"
	if auto {
		path = "/ready"
	}
	status, answer := probeGet(ctx, base+path)
	if auto && status == http.StatusNotFound {
		status, answer = probeGet(ctx, base+"/health")
		path = "/health"
	}
	return status == http.StatusOK, path + ": " + answer
}

func probeGet(ctx context.Context, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return resp.StatusCode, fmt.Sprintf("%s %s", resp.Status, bytes.TrimSpace(body))
}

// logTail returns "\n--- last lines of PATH ---\n..." for log, or "" when
// it is empty.
func logTail(log proc.Log) string {
	tail := log.Tail(25)
	if tail == "" {
		return ""
	}
	return "\n--- last lines of " + log.Path + " ---\n" + tail
}
