// Package load drives publish load at one or more targets on vegeta's
// library (Attacker, Targeter, Pacer, Result) and records every request in
// the history: the invocation in the targeter, before the request leaves,
// and the completion from vegeta's Result.
//
// Two models:
//
//   - open: requests leave on a schedule (a constant rate, or a linear ramp)
//     whatever the answers do. Workers are not capped, so a slow target
//     shows as latency, not as a quietly lower rate; and each invocation is
//     stamped with its scheduled time (never later than its actual send),
//     so a harness that falls behind its schedule charges the delay to the
//     latency instead of hiding it (no coordinated omission). Summary
//     reports the worst such delay as MaxSendLag.
//   - closed: Users workers, each sending its next request when the last one
//     answered plus Think. Think is slept in the targeter before the
//     invocation is recorded, so latencies exclude it.
package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/chronicleweaver/chronicleweaver/harness/client"
	"github.com/chronicleweaver/chronicleweaver/harness/gen"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// Model kinds.
const (
	Open   = "open"
	Closed = "closed"
)

// DefaultTimeout is the per-request timeout when Model.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// maxResponseBody is how much of an answer is kept (for error messages).
const maxResponseBody = 1024

// Model is how requests are paced.
type Model struct {
	Kind string // Open or Closed

	// Open model: Rate requests/s, constant, or when RampTo > 0 a linear
	// ramp from Rate to RampTo over Duration (which must then be set).
	Rate   float64
	RampTo float64

	// Closed model: Users concurrent users, each pausing Think between its
	// requests.
	Users int
	Think time.Duration

	// Duration is how long to send; 0 = until the source is exhausted (or
	// ctx ends).
	Duration time.Duration
	// Timeout is the per-request timeout (0: DefaultTimeout).
	Timeout time.Duration
}

// Config is one load run.
type Config struct {
	Targets []string // base URLs; requests go round-robin
	Token   string   // API token; empty: no Authorization header
	Model   Model
	Source  *gen.Source
	History *history.Recorder
	// Progress, when set, is called about once a second (from another
	// goroutine) and once at the end.
	Progress func(Progress)
	// Encode, when set, turns each request body (the contract's
	// {"events": [...]}) into the target's shape (a subject's, see
	// harness/subject); the history keeps the request's keys either way.
	Encode func(body []byte) ([]byte, error)
	// Acknowledged, when set, says which statuses acknowledge a publish
	// (a subject's api.publish.success); another 2xx is an unknown outcome.
	Acknowledged func(status int) bool
	// MaxConns, when above 0, caps the connections to each target; past it
	// a request waits for a connection within its timeout (its latency
	// says so). 0: as many as the schedule needs (see client.NewTransport).
	MaxConns int
	// IdempotencyHeader, when set (e.g. "Idempotency-Key"), is the header
	// that carries a fresh random key with every request; a request whose
	// outcome is unknown (timeout, reset, 503 that may have queued) is then
	// sent again with the same key, as a careful client would, until it is
	// acknowledged, refused by a 4xx, or Retries attempts more were made.
	// Each attempt is in the history with the key (history.Requests).
	// Empty: no key, no retry (a retry without a key would be counted
	// twice by design).
	IdempotencyHeader string
	// Retries bounds the retries of one request (0: DefaultRetries).
	Retries int
}

// DefaultRetries is Config.Retries when 0.
const DefaultRetries = 8

// Retry backoff: the first retry waits retryFirst, each next one twice as
// long, at most retryMax (a restarting service is back within seconds).
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = time.Second
)

// Progress is a snapshot of a running load.
type Progress struct {
	Elapsed              time.Duration
	Sent, OK, Fail, Info int64 // requests sent and completions by type
	EventsAcked          int64 // event copies in acknowledged requests
}

// Summary is what a run did.
type Summary struct {
	Start, End               time.Time
	Requests, OK, Fail, Info int64
	EventsAttempted          int64 // event copies in the requests sent
	EventsAcked              int64 // event copies in acknowledged requests
	// MaxSendLag (open model) is the longest a request left after its
	// scheduled time: a large value means the harness could not keep up
	// with the rate (the delay is counted in the latencies).
	MaxSendLag time.Duration
	// SendLags (open model) are every first attempt's delay after its
	// scheduled time (0 when on time), in the order sent: the generator's
	// own lateness, whose percentiles say whether it kept its schedule.
	SendLags []time.Duration
	// FromSend are the first attempts' latencies from when the request
	// actually left (vegeta's Result.Latency), without the send lag: the
	// target's own latency. The history's latencies start at the scheduled
	// time instead (no coordinated omission).
	FromSend []time.Duration
	// CPU is the CPU time (user + system) this process used during the
	// run (getrusage RUSAGE_SELF; child processes excluded): the load
	// generator with its history recording, and whatever else the process
	// did meanwhile. Zero where rusage is not available.
	CPU time.Duration
}

func (c Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("load: %s: "+format, append([]any{field}, args...)...))
	}
	if len(c.Targets) == 0 {
		bad("Targets", "no target URL")
	}
	for _, t := range c.Targets {
		if err := checkTarget(t); err != nil {
			bad("Targets", "%q: %v", t, err)
		}
	}
	if c.Source == nil {
		bad("Source", "not set")
	}
	if c.History == nil {
		bad("History", "not set")
	}
	return errors.Join(append(errs, c.Model.Validate())...)
}

// Validate checks a model on its own: a known Kind with the fields of that
// kind only, a rate in (0, 1e9] (a ramp needs a Duration), at least one
// user, no negative duration. Errors name the field ("load: Model.Rate:
// ..."); Run checks its Config's model with it.
func (m Model) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("load: Model.%s: "+format, append([]any{field}, args...)...))
	}
	switch m.Kind {
	case Open:
		if !(m.Rate > 0) || math.IsInf(m.Rate, 0) || m.Rate > 1e9 {
			bad("Rate", "%v requests/s: the open model needs a rate in (0, 1e9]", m.Rate)
		}
		if m.RampTo < 0 || math.IsNaN(m.RampTo) || m.RampTo > 1e9 {
			bad("RampTo", "%v requests/s is outside [0, 1e9] (0: no ramp)", m.RampTo)
		}
		if m.RampTo > 0 && m.Duration <= 0 {
			bad("Duration", "a ramp (RampTo %v) needs a Duration to ramp over", m.RampTo)
		}
		if m.Users != 0 || m.Think != 0 {
			bad("Users", "Users and Think belong to the closed model, not the open one")
		}
	case Closed:
		if m.Users < 1 {
			bad("Users", "%d: the closed model needs at least 1 user", m.Users)
		}
		if m.Think < 0 {
			bad("Think", "%s is negative", m.Think)
		}
		if m.Rate != 0 || m.RampTo != 0 {
			bad("Rate", "Rate and RampTo belong to the open model, not the closed one")
		}
	default:
		bad("Kind", "%q: want %q or %q", m.Kind, Open, Closed)
	}
	if m.Duration < 0 {
		bad("Duration", "%s is negative (0: until the source is exhausted)", m.Duration)
	}
	if m.Timeout < 0 {
		bad("Timeout", "%s is negative (0: %s)", m.Timeout, DefaultTimeout)
	}
	return errors.Join(errs...)
}

func checkTarget(t string) error {
	u, err := url.Parse(t)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("scheme must be http or https")
	case u.Host == "":
		return errors.New("no host")
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(t, "?"):
		return errors.New("a base URL takes no query or fragment")
	}
	return nil
}

// inflight is an invocation waiting for its result.
type inflight struct {
	inv  history.Op
	proc int
	body []byte // the encoded body: a retry sends it again
}

// run is the state of one Run. The targeter runs on vegeta's workers, the
// result loop on Run's goroutine; counters are atomic, the rest under mu.
type run struct {
	cfg      Config
	m        Model
	targets  []string
	header   http.Header // shared, read-only: vegeta copies it into each request
	began    time.Time
	deadline time.Time // zero: none
	ctx      context.Context
	schedule func(k int64) (time.Duration, bool) // open model: offset of hit k

	calls atomic.Int64 // targeter calls that produced a request
	users atomic.Int64 // closed model: targeter calls so far (first Users skip the think)

	hc      *http.Client   // vegeta's client, also used by retries
	retries sync.WaitGroup // retry loops still running

	mu       sync.Mutex
	inflight map[int64]inflight // by history Req
	free     []int              // free process numbers
	procs    int                // process numbers handed out so far

	sent, ok, fail, info, evSent, evAcked, maxLag atomic.Int64

	lags     []time.Duration // under mu: send lag of each first attempt (open model)
	fromSend []time.Duration // result loop only: Result.Latency of each first attempt
}

// Run sends the source's requests to the targets under the model until
// the source is exhausted, Duration has passed or ctx ends, and records
// every request in the history. It returns once every request sent has
// its completion recorded (each answers or times out within Timeout), so
// ending ctx stops sending but still records what was in flight; the error
// is then nil, as at the end of Duration.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.validate(); err != nil {
		return Summary{}, err
	}
	m := cfg.Model
	if m.Timeout == 0 {
		m.Timeout = DefaultTimeout
	}
	r := &run{cfg: cfg, m: m, ctx: ctx, inflight: map[int64]inflight{}}
	for _, t := range cfg.Targets {
		r.targets = append(r.targets, strings.TrimRight(t, "/"))
	}
	r.header = http.Header{"Content-Type": {"application/json"}}
	if cfg.Token != "" {
		r.header.Set("Authorization", "Bearer "+cfg.Token)
	}

	transport := client.NewTransport()
	if cfg.MaxConns > 0 {
		transport.MaxConnsPerHost = cfg.MaxConns
		transport.MaxIdleConnsPerHost = cfg.MaxConns
	}
	defer transport.CloseIdleConnections()
	hc := &http.Client{
		Transport:     transport,
		Timeout:       m.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r.hc = hc
	if cfg.Retries <= 0 {
		r.cfg.Retries = DefaultRetries
	}
	opts := []func(*vegeta.Attacker){vegeta.Client(hc), vegeta.MaxBody(maxResponseBody)}
	var pacer vegeta.Pacer
	switch m.Kind {
	case Open:
		// One hit per interval: vegeta's ConstantPacer takes an integer
		// frequency, so a fractional rate is expressed through Per.
		start := vegeta.Rate{Freq: 1, Per: time.Duration(math.Round(1e9 / m.Rate))}
		if m.RampTo > 0 {
			slope := (m.RampTo - m.Rate) / m.Duration.Seconds()
			pacer = vegeta.LinearPacer{StartAt: start, Slope: slope}
			r.schedule = linearSchedule(1e9/float64(start.Per), slope)
		} else {
			pacer = start
			per := start.Per
			r.schedule = func(k int64) (time.Duration, bool) { return time.Duration(k+1) * per, true }
		}
		// Workers are not capped (vegeta's default MaxWorkers): a slow
		// target gets more concurrent requests, not fewer.
	case Closed:
		pacer = vegeta.Rate{} // zero: as fast as the workers allow
		opts = append(opts, vegeta.Workers(uint64(m.Users)), vegeta.MaxWorkers(uint64(m.Users)))
	}
	atk := vegeta.NewAttacker(opts...)

	cpu0 := ProcessCPU()
	r.began = time.Now()
	if m.Duration > 0 {
		r.deadline = r.began.Add(m.Duration)
	}
	results := atk.Attack(r.target, pacer, m.Duration, "chronicle")

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			atk.Stop()
		case <-done:
		}
	})
	if cfg.Progress != nil {
		wg.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					cfg.Progress(r.progress())
				}
			}
		})
	}

	var errs []error
	for res := range results {
		if err := r.complete(res); err != nil && len(errs) < 10 {
			errs = append(errs, err)
		}
	}
	// Retries of unknown outcomes go on after the attack (a careful
	// client does not give up when its schedule ends); each is bounded.
	r.retries.Wait()
	close(done)
	wg.Wait()

	// Every hit that got a request from the targeter yields a Result, so
	// nothing should be left; if something is, its outcome is unknown.
	r.mu.Lock()
	left := r.inflight
	r.inflight = map[int64]inflight{}
	r.mu.Unlock()
	for _, fl := range left {
		cfg.History.Complete(fl.inv, history.Info, time.Now(), 0, "load: no result from the attacker", "")
		r.info.Add(1)
	}
	if len(left) > 0 {
		errs = append(errs, fmt.Errorf("load: %d requests got no result from the attacker (recorded as info)", len(left)))
	}

	if cfg.Progress != nil {
		cfg.Progress(r.progress())
	}
	sum := Summary{
		Start: r.began, End: time.Now(),
		Requests: r.sent.Load(), OK: r.ok.Load(), Fail: r.fail.Load(), Info: r.info.Load(),
		EventsAttempted: r.evSent.Load(), EventsAcked: r.evAcked.Load(),
		MaxSendLag: time.Duration(r.maxLag.Load()),
		SendLags:   r.lags, FromSend: r.fromSend,
	}
	if cpu1 := ProcessCPU(); cpu0 >= 0 && cpu1 >= cpu0 {
		sum.CPU = cpu1 - cpu0
	}
	return sum, errors.Join(errs...)
}

func (r *run) progress() Progress {
	return Progress{
		Elapsed: time.Since(r.began), Sent: r.sent.Load(),
		OK: r.ok.Load(), Fail: r.fail.Load(), Info: r.info.Load(), EventsAcked: r.evAcked.Load(),
	}
}

// target is the vegeta.Targeter: it takes the next request of the source,
// records its invocation and points the hit at the next target, with the
// history's request id in the query (op=) to match the Result.
func (r *run) target(tgt *vegeta.Target) error {
	if r.ctx.Err() != nil {
		return vegeta.ErrNoTargets
	}
	if r.m.Kind == Closed {
		if r.m.Think > 0 && r.users.Add(1) > int64(r.m.Users) && !r.think() {
			return vegeta.ErrNoTargets
		}
		if !r.deadline.IsZero() && !time.Now().Before(r.deadline) {
			return vegeta.ErrNoTargets
		}
	}
	req, ok := r.cfg.Source.Next()
	if !ok {
		return vegeta.ErrNoTargets
	}
	if r.cfg.Encode != nil {
		body, err := r.cfg.Encode(req.Body)
		if err != nil {
			return fmt.Errorf("load: request %d: %w", req.Seq, err)
		}
		req.Body = body
	}
	k := r.calls.Add(1) - 1
	now := time.Now()
	at := now
	lag, scheduled := time.Duration(0), false
	if r.schedule != nil {
		if off, ok := r.schedule(k); ok {
			scheduled = true
			if due := r.began.Add(off); due.Before(now) {
				at = due
				lag = now.Sub(due)
				r.noteLag(lag)
			}
		}
	}
	base := r.targets[k%int64(len(r.targets))]
	proc := r.acquire()
	hdr := r.header
	var inv history.Op
	if h := r.cfg.IdempotencyHeader; h != "" {
		key := newKey()
		hdr = hdr.Clone()
		setKey(hdr, h, key)
		inv = r.cfg.History.InvokeKeyed(at, proc, history.FPublish, req.Keys, base, key)
	} else {
		inv = r.cfg.History.InvokeAt(at, proc, history.FPublish, req.Keys, base)
	}
	r.mu.Lock()
	r.inflight[inv.Req] = inflight{inv: inv, proc: proc, body: req.Body}
	if scheduled {
		r.lags = append(r.lags, lag)
	}
	r.mu.Unlock()
	r.sent.Add(1)
	r.evSent.Add(int64(len(req.Keys)))

	tgt.Method = http.MethodPost
	tgt.URL = base + "/publish?op=" + strconv.FormatInt(inv.Req, 10)
	tgt.Body = req.Body
	tgt.Header = hdr
	return nil
}

// setKey sets the idempotency key header under its lower-case name, on
// purpose: net/http's transport silently resends a request that carries
// "Idempotency-Key" (canonical spelling) when a reused connection breaks,
// and then reports the second try's error (a refused connection, while
// the first try may have been applied). Every attempt must be one the
// history records, so the transport must not know the request is
// replayable; header names are case-insensitive on the wire.
func setKey(h http.Header, name, key string) {
	h.Del(name)
	h[strings.ToLower(name)] = []string{key}
}

// newKey returns a fresh Idempotency-Key: 128 random bits.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// retry sends the request of fl (an attempt whose outcome was unknown)
// again with its key, with a growing backoff, recording each attempt,
// until one is acknowledged or refused by a 4xx, or the retries run out.
// A refused connection or a 503 that queued nothing is retried too: an
// earlier attempt may still have been applied, so the request is not
// settled until it is acknowledged. Retries go to the next target (a
// client failing over), so a frozen instance does not hold them.
func (r *run) retry(fl inflight) {
	defer r.retries.Done()
	base := fl.inv.Value
	for i, b := range r.targets {
		if b == base {
			base = r.targets[(i+1)%len(r.targets)]
			break
		}
	}
	wait := retryFirst
	for attempt := 1; attempt <= r.cfg.Retries; attempt++ {
		t := time.NewTimer(wait)
		<-t.C // the backoff of a client, not a synchronisation
		wait = min(2*wait, retryMax)
		proc := r.acquire()
		inv := r.cfg.History.InvokeKeyed(time.Now(), proc, history.FPublish, fl.inv.Keys, base, fl.inv.IdemKey)
		r.sent.Add(1)
		r.evSent.Add(int64(len(fl.inv.Keys)))
		typ, status := r.send(base, fl.inv.IdemKey, fl.body, inv)
		r.mu.Lock()
		r.free = append(r.free, proc)
		r.mu.Unlock()
		r.count(typ, len(fl.inv.Keys))
		if typ == history.OK || (status >= 400 && status < 500) {
			return
		}
	}
}

// send posts one retry attempt and records its completion.
func (r *run) send(base, key string, body []byte, inv history.Op) (history.Type, int) {
	ctx, cancel := context.WithTimeout(context.Background(), r.m.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/publish?op="+strconv.FormatInt(inv.Req, 10), bytes.NewReader(body))
	if err != nil {
		r.cfg.History.Complete(inv, history.Fail, time.Now(), 0, "load: retry: "+err.Error(), "")
		return history.Fail, 0
	}
	req.Header = r.header.Clone()
	setKey(req.Header, r.cfg.IdempotencyHeader, key)
	resp, err := r.hc.Do(req)
	if err != nil {
		typ := client.Classify(0, nil, err)
		r.cfg.History.Complete(inv, typ, time.Now(), 0, err.Error(), "")
		return typ, 0
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	typ := client.Classify(resp.StatusCode, resp.Header, nil)
	if typ == history.OK && r.cfg.Acknowledged != nil && !r.cfg.Acknowledged(resp.StatusCode) {
		typ = history.Info
	}
	text := ""
	if resp.StatusCode >= 300 {
		text = strings.TrimSpace(string(msg))
	}
	r.cfg.History.Complete(inv, typ, time.Now(), resp.StatusCode, text, replayed(typ, resp.Header))
	return typ, resp.StatusCode
}

// ReplayedHeader marks an acknowledgement of a request whose key was
// already applied (the service's Idempotent-Replayed: true); the history
// keeps it as the completion's value history.Replayed.
const ReplayedHeader = "Idempotent-Replayed"

// replayed is the completion value of an answer: history.Replayed for an
// acknowledgement marked as a replay, else "".
func replayed(typ history.Type, h http.Header) string {
	if typ == history.OK && strings.EqualFold(strings.TrimSpace(h.Get(ReplayedHeader)), "true") {
		return history.Replayed
	}
	return ""
}

// count adds one completion to the counters.
func (r *run) count(typ history.Type, events int) {
	switch typ {
	case history.OK:
		r.ok.Add(1)
		r.evAcked.Add(int64(events))
	case history.Fail:
		r.fail.Add(1)
	default:
		r.info.Add(1)
	}
}

// think sleeps the think time, cut short by the deadline; false when ctx
// ended or the deadline passed.
func (r *run) think() bool {
	d := r.m.Think
	if !r.deadline.IsZero() {
		d = min(d, time.Until(r.deadline))
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-r.ctx.Done():
			return false
		case <-t.C:
		}
	}
	return r.deadline.IsZero() || time.Now().Before(r.deadline)
}

func (r *run) noteLag(lag time.Duration) {
	for {
		cur := r.maxLag.Load()
		if int64(lag) <= cur || r.maxLag.CompareAndSwap(cur, int64(lag)) {
			return
		}
	}
}

// acquire returns a process number with no operation outstanding.
func (r *run) acquire() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.free); n > 0 {
		p := r.free[n-1]
		r.free = r.free[:n-1]
		return p
	}
	r.procs++
	return r.procs - 1
}

// complete records the completion of one vegeta Result.
func (r *run) complete(res *vegeta.Result) error {
	if res.URL == "" {
		return nil // the targeter ended the attack: no request was made
	}
	id, err := opID(res.URL)
	if err != nil {
		return err
	}
	r.mu.Lock()
	fl, ok := r.inflight[id]
	delete(r.inflight, id)
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("load: result for %s matches no invocation in flight", res.URL)
	}

	r.fromSend = append(r.fromSend, res.Latency)
	var tErr error
	if res.Code == 0 && res.Error != "" {
		tErr = errors.New(res.Error)
	}
	typ := client.Classify(int(res.Code), res.Headers, tErr)
	if typ == history.OK && r.cfg.Acknowledged != nil && !r.cfg.Acknowledged(int(res.Code)) {
		typ = history.Info // a 2xx the subject does not call an acknowledgement
	}
	msg := res.Error
	if res.Code >= 300 {
		if b := strings.TrimSpace(string(res.Body)); b != "" {
			msg += ": " + b
		}
	}
	r.cfg.History.Complete(fl.inv, typ, res.End(), int(res.Code), msg, replayed(typ, res.Headers))

	r.mu.Lock()
	r.free = append(r.free, fl.proc)
	r.mu.Unlock()
	r.count(typ, len(fl.inv.Keys))
	if typ == history.Info && fl.inv.IdemKey != "" {
		r.retries.Add(1)
		go r.retry(fl)
	}
	return nil
}

// opID reads the history request id from a target URL: the target's
// URLs end in "?op=<id>" (see target), read without parsing the URL
// (two allocations fewer per request); any other shape is parsed.
func opID(raw string) (int64, error) {
	if i := strings.LastIndex(raw, "?op="); i >= 0 {
		if id, err := strconv.ParseInt(raw[i+len("?op="):], 10, 64); err == nil {
			return id, nil
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return 0, fmt.Errorf("load: result URL %q: %w", raw, err)
	}
	id, err := strconv.ParseInt(u.Query().Get("op"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("load: result URL %q has no op id: %w", raw, err)
	}
	return id, nil
}

// linearSchedule returns when hit k is due under vegeta's LinearPacer
// starting at b hits/s with slope a hits/s²: hit 0 at once, hit k when the
// expected number of hits a t²/2 + b t reaches k+1.
func linearSchedule(b, a float64) func(k int64) (time.Duration, bool) {
	return func(k int64) (time.Duration, bool) {
		if k == 0 {
			return 0, true
		}
		n := float64(k + 1)
		var secs float64
		if a == 0 {
			secs = n / b
		} else {
			disc := b*b + 2*a*n
			if disc < 0 {
				return 0, false // past the end of a ramp down to zero
			}
			secs = (math.Sqrt(disc) - b) / a
		}
		return time.Duration(secs * 1e9), true
	}
}
