package scenario

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/env"
	"github.com/chronicleweaver/chronicleweaver/harness/nemesis"
	"github.com/chronicleweaver/chronicleweaver/harness/results"
	"github.com/chronicleweaver/chronicleweaver/service/api"
	"github.com/chronicleweaver/chronicleweaver/service/app"
	"github.com/chronicleweaver/chronicleweaver/service/worker"
)

// Expect lists the effects a scenario's faults must provoke. Each one set
// must be seen at least once in the run, or the run is invalid: a fault
// that silently did nothing (a proxy nothing went through, a pause that
// ended before anything noticed it) proves nothing. Where an effect is
// seen is said on each field: the history of the run, the checker's
// verdict, the service's log (every lifetime of every instance), or its
// /metrics at the end of the run.
type Expect struct {
	// Rejected: publishes refused with nothing queued (history: 503 with
	// Chronicle-Outcome rejected, for backpressure, a drain or a
	// PUBLISH_TIMEOUT that passed before the send; or a refused connection).
	Rejected bool `yaml:"rejected"`
	// Unknown: publishes whose outcome is unknown (history: 503 unknown, a
	// timeout, a reset connection).
	Unknown bool `yaml:"unknown"`
	// Recovered: keys of publishes with an unknown outcome found stored
	// (checker): an append that went through although its caller never
	// heard so.
	Recovered bool `yaml:"recovered"`
	// Retried: batch transactions that failed and were retried (service
	// log, worker.LogBatchRetry).
	Retried bool `yaml:"retried"`
	// BatchTimeout: batch transactions abandoned after BATCH_TIMEOUT and
	// retried (service log, worker.LogBatchTimeout).
	BatchTimeout bool `yaml:"batch_timeout"`
	// OwnPending: a restarted instance applied entries it had read and not
	// acknowledged before it stopped (service log, worker.LogOwnPending).
	OwnPending bool `yaml:"own_pending"`
	// Claimed: entries claimed from a consumer idle past CLAIM_IDLE
	// (service log, worker.LogClaimed).
	Claimed bool `yaml:"claimed"`
	// AlreadyApplied: delivered entries the ledger had already applied,
	// committed but not acknowledged (service log, worker.LogAlreadyApplied).
	AlreadyApplied bool `yaml:"already_applied"`
	// AppendedTwice: second copies of one append, written by a command the
	// Redis client retried after its first attempt took effect, recognised
	// by the ledger (service log, worker.LogAppendedTwice).
	AppendedTwice bool `yaml:"appended_twice"`
	// DrainCut: a SIGTERM drain cut short by SHUTDOWN_TIMEOUT (service log,
	// app.LogDrainCut).
	DrainCut bool `yaml:"drain_cut"`
	// DiskRefused: publishes answered 503 because Redis refused to write
	// while it could not write its AOF (service log: a failed request
	// whose error is Redis's MISCONF).
	DiskRefused bool `yaml:"disk_refused"`
	// DiskFull: batch transactions PostgreSQL refused for want of disk
	// space, retried (service log, worker.LogBatchRetry with SQLSTATE
	// 53100).
	DiskFull bool `yaml:"disk_full"`
	// Slowed: batch transactions slowed by the link's added latency: at
	// least a tenth of the batch commits took two latencies (a round trip)
	// or more (/metrics of each instance at the end of the run, so only in
	// scenarios that do not restart the service).
	Slowed bool `yaml:"slowed"`
}

// effect is one kind of effect: its name in the scenario file, whether
// the scenario expects it, and how to measure it.
type effect struct {
	name, what string
	want       bool
	// logMsg: counted in the service log (lines with this "msg" and, when
	// logErr is set, an "err" that holds logErr).
	logMsg, logErr string
	// count: measured otherwise.
	count func(*effectInputs) (int64, error)
}

// effects are the scenario's expected effects, in Expect's order.
func (s *Scenario) effects() []effect {
	e := s.Expect
	history := func(f func(checker.Result) int) func(*effectInputs) (int64, error) {
		return func(in *effectInputs) (int64, error) { return int64(f(in.check)), nil }
	}
	all := []effect{
		// Attempts, not requests: a retry with the request's key (the
		// harness's, after an unknown outcome) does not undo what the
		// fault did to the first attempt.
		{name: "rejected", want: e.Rejected, what: "publishes refused with nothing queued (history)",
			count: history(func(c checker.Result) int { return c.FailedAttempts })},
		{name: "unknown", want: e.Unknown, what: "publishes with an unknown outcome: 503 unknown, timeout, reset (history)",
			count: history(func(c checker.Result) int { return c.UnknownAttempts })},
		{name: "recovered", want: e.Recovered, what: "keys of unknown publishes found stored, or keyed requests whose retry was answered as a replay (checker)",
			count: history(func(c checker.Result) int { return c.Recovered + c.ReplayedAfterUnknown })},
		{name: "retried", want: e.Retried, what: "batches failed and retried (service log)", logMsg: worker.LogBatchRetry},
		{name: "batch_timeout", want: e.BatchTimeout, what: "batches abandoned after BATCH_TIMEOUT and retried (service log)", logMsg: worker.LogBatchTimeout},
		{name: "own_pending", want: e.OwnPending, what: "restarts that applied their own unacknowledged entries (service log)", logMsg: worker.LogOwnPending},
		{name: "claimed", want: e.Claimed, what: "claims of entries idle past CLAIM_IDLE (service log)", logMsg: worker.LogClaimed},
		{name: "already_applied", want: e.AlreadyApplied, what: "batches holding entries the ledger had already applied (service log)", logMsg: worker.LogAlreadyApplied},
		{name: "appended_twice", want: e.AppendedTwice, what: "batches holding a second copy of one append (service log)", logMsg: worker.LogAppendedTwice},
		{name: "drain_cut", want: e.DrainCut, what: "SIGTERM drains cut short by SHUTDOWN_TIMEOUT (service log)", logMsg: app.LogDrainCut},
		{name: "disk_refused", want: e.DiskRefused, what: "publishes answered 503 because Redis could not write its AOF: MISCONF (service log)",
			logMsg: api.LogDependencyFailed, logErr: "MISCONF"},
		{name: "disk_full", want: e.DiskFull, what: "batches PostgreSQL refused for want of disk space (SQLSTATE 53100), retried (service log)",
			logMsg: worker.LogBatchRetry, logErr: "SQLSTATE 53100"},
		{name: "slowed", want: e.Slowed, what: "batch commits slower than the added round trip, when at least a tenth of all (service /metrics)",
			count: func(in *effectInputs) (int64, error) { return in.slowCommits(s) }},
	}
	var out []effect
	for _, f := range all {
		if f.want {
			out = append(out, f)
		}
	}
	return out
}

// effectInputs is what the effects are measured from.
type effectInputs struct {
	ctx   context.Context
	env   env.Env
	check checker.Result
	logs  map[string]int64 // log line count by msg, all instances; nil until read
	raw   [][]byte         // the logs, for counts by msg and err
	err   error            // why the logs could not be read
}

// logCount counts the lines with msg in every service instance's log.
func (in *effectInputs) logCount(msg string) (int64, error) {
	if in.logs == nil && in.err == nil {
		in.logs = map[string]int64{}
		for _, n := range in.env.Nodes() {
			if n == env.Redis || n == env.Postgres {
				continue
			}
			b, err := in.env.ServiceLog(in.ctx, n)
			if err != nil {
				in.err = err
				break
			}
			countMessages(b, in.logs)
			in.raw = append(in.raw, b)
		}
		if in.err == nil && len(in.env.Nodes()) == 0 {
			in.err = fmt.Errorf("no service node to read a log from: %w", env.ErrUnsupported)
		}
	}
	if in.err != nil {
		return 0, in.err
	}
	return in.logs[msg], nil
}

// logErrCount counts the lines with msg whose "err" holds sub in every
// service instance's log.
func (in *effectInputs) logErrCount(msg, sub string) (int64, error) {
	if _, err := in.logCount(msg); err != nil {
		return 0, err
	}
	var n int64
	for _, b := range in.raw {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if !bytes.Contains(line, []byte(sub)) {
				continue
			}
			var l struct {
				Msg string `json:"msg"`
				Err string `json:"err"`
			}
			if json.Unmarshal(line, &l) == nil && l.Msg == msg && strings.Contains(l.Err, sub) {
				n++
			}
		}
	}
	return n, nil
}

// countMessages adds the "msg" of every JSON line of b to counts.
func countMessages(b []byte, counts map[string]int64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var l struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(line, &l) == nil && l.Msg != "" {
			counts[l.Msg]++
		}
	}
}

// commitMetric is the service's histogram of batch transaction durations.
const commitMetric = "chronicle_batch_commit_seconds"

// slowCommits counts the batch commits, over every service instance's
// current lifetime, at least as slow as twice the largest latency of the
// scenario's slow links; 0 when they are under a tenth of all commits.
func (in *effectInputs) slowCommits(s *Scenario) (int64, error) {
	var latency time.Duration
	for _, f := range s.Nemesis {
		if f.Fault == nemesis.Slow {
			latency = max(latency, f.Latency.D())
		}
		if u := f.During; u != nil && u.Fault == nemesis.Slow {
			latency = max(latency, u.Latency.D())
		}
	}
	if latency == 0 {
		return 0, errors.New("the scenario slows no link")
	}
	threshold := 2 * latency.Seconds()
	var slow, total float64
	for _, t := range in.env.Targets() {
		h, err := readHistogram(in.ctx, t+"/metrics", commitMetric)
		if err != nil {
			return 0, err
		}
		// The largest bucket bound at or under the threshold: what is
		// above it took about the threshold or more.
		var under float64
		for _, b := range h.buckets {
			if b.le <= threshold {
				under = b.count
			}
		}
		slow += h.count - under
		total += h.count
	}
	if total == 0 || slow < total/10 {
		return 0, nil
	}
	return int64(slow), nil
}

type bucket struct{ le, count float64 }

type histogram struct {
	buckets []bucket // cumulative, by le
	count   float64
}

// readHistogram reads one histogram (no labels) from a Prometheus text
// endpoint.
func readHistogram(ctx context.Context, url, name string) (histogram, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return histogram{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return histogram{}, fmt.Errorf("read %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return histogram{}, fmt.Errorf("read %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return histogram{}, fmt.Errorf("read %s: %w", url, err)
	}
	var h histogram
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, name+`_bucket{le="`):
			rest := strings.TrimPrefix(line, name+`_bucket{le="`)
			le, val, ok := strings.Cut(rest, `"} `)
			if !ok {
				continue
			}
			l, err1 := strconv.ParseFloat(le, 64)
			if le == "+Inf" {
				l, err1 = math.Inf(1), nil
			}
			v, err2 := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err1 == nil && err2 == nil {
				h.buckets = append(h.buckets, bucket{l, v})
			}
		case strings.HasPrefix(line, name+"_count "):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name+"_count ")), 64)
			if err == nil {
				h.count, found = v, true
			}
		}
	}
	if !found {
		return histogram{}, fmt.Errorf("read %s: no histogram %s: %w", url, name, env.ErrUnsupported)
	}
	return h, nil
}

// measureEffects measures each effect the scenario expects. With foreign
// set (another implementation of the contract runs as the service), the
// effects seen inside our service are recorded as informative, not
// measured: only those seen from outside (history, checker) are required.
func measureEffects(ctx context.Context, s *Scenario, e env.Env, check checker.Result, foreign bool) []results.Effect {
	in := &effectInputs{ctx: ctx, env: e, check: check}
	var out []results.Effect
	for _, f := range s.effects() {
		r := results.Effect{Name: f.name, What: f.what}
		var n int64
		var err error
		internal := f.logMsg != "" || f.name == "slowed"
		if foreign && internal {
			r.Informative = true
			r.NotMeasured = "seen inside our service (its log or metrics); the subject is another implementation"
			out = append(out, r)
			continue
		}
		switch {
		case f.logErr != "":
			n, err = in.logErrCount(f.logMsg, f.logErr)
		case f.logMsg != "":
			n, err = in.logCount(f.logMsg)
		default:
			n, err = f.count(in)
		}
		if err != nil {
			r.NotMeasured = err.Error()
		} else {
			r.Count, r.Shown = n, n > 0
		}
		out = append(out, r)
	}
	return out
}

// effectViolations are the verdict's lines for effects not shown.
func effectViolations(effects []results.Effect) []string {
	var out []string
	for _, f := range effects {
		switch {
		case f.Informative:
		case f.NotMeasured != "":
			out = append(out, fmt.Sprintf("effect %s (%s) not measured: %s", f.Name, f.What, f.NotMeasured))
		case !f.Shown:
			out = append(out, fmt.Sprintf("effect %s (%s) expected from the faults, not seen", f.Name, f.What))
		}
	}
	return out
}

// faultErrors are the faults that did not apply as planned: each one
// that reported an error, and a shortfall against the plan.
func faultErrors(faults []results.Fault, planned int) []string {
	var out []string
	for _, f := range faults {
		if f.Error != "" {
			what := f.Kind + " " + f.Target
			if f.During != "" {
				what += " (during " + f.During + ")"
			}
			out = append(out, fmt.Sprintf("fault %s at %s did not apply as planned: %s", what, f.At.Format("15:04:05.000"), f.Error))
		}
	}
	if len(faults) != planned {
		out = append(out, fmt.Sprintf("faults: %d injected, the schedule plans %d", len(faults), planned))
	}
	return out
}

// planned is how many faults the scenario's schedule plans.
func (s *Scenario) planned() int {
	n := 0
	for _, f := range s.Nemesis {
		n += f.Count
	}
	return n
}
