// Package checker decides whether a run kept the service's guarantees. It is
// the one definition of correctness: scenarios, property tests and negative
// controls all call Check.
//
// Like Jepsen's set checker, it compares the keys the history says were
// attempted and acknowledged with the keys read back after the queue
// drained:
//
//	lost        acknowledged, not stored
//	duplicated  stored more than once
//	unexpected  stored, never attempted (or only in definitely failed requests)
//	recovered   outcome unknown (timeout, reset, maybe-queued 503), stored
//
// and checks that the stats are exact (see Check).
//
// When the requests carried an Idempotency-Key (the load retries an
// unknown outcome with the same key), the unit is the request, not the
// attempt, and the accounting is exact per request (see Check).
package checker

import (
	"cmp"
	"fmt"
	"sort"
	"strings"

	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// Stats are the service's /stats counters.
type Stats struct {
	Received          int64 `json:"received"`
	UniqueProcessed   int64 `json:"unique_processed"`
	DuplicatedDropped int64 `json:"duplicated_dropped"`
	QueueDepth        int64 `json:"queue_depth"`
	Pending           int64 `json:"pending"`
	DeadLettered      int64 `json:"dead_lettered"`
}

// Sub returns s - o for the cumulative counters (queue state from s).
func (s Stats) Sub(o Stats) Stats {
	return Stats{
		Received:          s.Received - o.Received,
		UniqueProcessed:   s.UniqueProcessed - o.UniqueProcessed,
		DuplicatedDropped: s.DuplicatedDropped - o.DuplicatedDropped,
		DeadLettered:      s.DeadLettered - o.DeadLettered,
		QueueDepth:        s.QueueDepth,
		Pending:           s.Pending,
	}
}

// Audit is the service's /audit/summary totals.
type Audit struct {
	Received  int64 `json:"total_received"`
	Queued    int64 `json:"total_queued"`
	Processed int64 `json:"total_processed"`
	Dropped   int64 `json:"total_dropped"`
	Failed    int64 `json:"total_failed"`
}

// Sub returns a - o.
func (a Audit) Sub(o Audit) Audit {
	return Audit{a.Received - o.Received, a.Queued - o.Queued, a.Processed - o.Processed, a.Dropped - o.Dropped, a.Failed - o.Failed}
}

// Readback is what the harness read from the target after the run.
type Readback struct {
	// Stored counts how often each key of the run is stored (from the
	// database, or from walking GET /events).
	Stored map[history.Key]int
	// Before and After are /stats read before the load and after the drain;
	// checks use After - Before, so a target with older data can be checked.
	Before, After Stats
	// AuditBefore and AuditAfter are /audit/summary; nil when unavailable.
	AuditBefore, AuditAfter *Audit
	// Applied counts, per request signature (Signature of its keys), the
	// stream entries applied with exactly those keys: the rows of events
	// and dropped, grouped by the entry that carried them (ours only). nil:
	// not read; keyed requests are then checked by the bound alone.
	Applied map[string]int
	// Drained is false when the queue did not drain before the deadline.
	Drained bool
	// Gaps are what the target could not be asked (a subject without
	// /audit/summary, without counters, ...): the checks that need it are
	// reported not measured, never passed.
	Gaps Gaps
}

// Gaps say, for each part of the read-back the target did not offer, why
// ("" : offered). The zero value is a target that offers everything.
type Gaps struct {
	// Stored: the stored keys could not be read back (no table to read, a
	// capped /events without a cursor): lost, duplicated and unexpected are
	// not measured.
	Stored string
	// Counters: /stats has no received, unique_processed and
	// duplicated_dropped: stats exactness is not measured.
	Counters string
	// Queue: /stats reports no queue_depth and pending; Drained then comes
	// from the caller's fallback (see client.WaitDrained), which is noted.
	Queue string
	// DeadLetters: /stats reports no dead-lettered count.
	DeadLetters string
	// Audit: no /audit/summary: audit exactness is not measured.
	Audit string
}

// Checks that can be reported not measured (NotMeasured.Check).
const (
	CheckLost        = "lost"
	CheckDuplicated  = "duplicated"
	CheckUnexpected  = "unexpected"
	CheckStatsExact  = "stats_exact"
	CheckAuditExact  = "audit_exact"
	CheckQueue       = "queue_reported"
	CheckDeadLetters = "dead_letters"
	CheckRequests    = "requests_exact"
)

// NotMeasured is a check the checker could not make, and why.
type NotMeasured struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
}

// Result is the verdict.
type Result struct {
	Valid bool `json:"valid"`

	// Distinct keys by what the history says of them.
	Attempted    int `json:"attempted"`
	Acknowledged int `json:"acknowledged"`
	Stored       int `json:"stored"`

	// Event copies (a key sent twice counts twice).
	AttemptedCopies    int64 `json:"attempted_copies"`
	AcknowledgedCopies int64 `json:"acknowledged_copies"`
	FailedCopies       int64 `json:"failed_copies"`
	UnknownCopies      int64 `json:"unknown_copies"`

	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	Unexpected int `json:"unexpected"`
	Recovered  int `json:"recovered"`

	// Requests by outcome: with keys, a request is all its attempts (OK
	// if one was acknowledged, else Info if one is unknown, else Fail).
	Requests struct {
		OK, Fail, Info int
	} `json:"requests"`

	// Keyed: the requests carried Idempotency-Keys; Retries is the
	// attempts after the first. RequestsExact: each request was applied at
	// most once, each acknowledged one exactly once, and received is the
	// copies of the requests applied (ExpectedReceived), of which
	// AppliedUnknown requests had an unknown outcome.
	// Attempts by outcome (the same as Requests without keys): what the
	// faults did to the requests as sent.
	FailedAttempts  int `json:"failed_attempts,omitempty"`
	UnknownAttempts int `json:"unknown_attempts,omitempty"`
	// ReplayedAfterUnknown counts keyed requests acknowledged as a replay
	// after an attempt with an unknown outcome: that attempt was applied
	// (its answer was lost), as Recovered keys show without keys.
	ReplayedAfterUnknown int `json:"replayed_after_unknown,omitempty"`

	Keyed            bool  `json:"keyed,omitempty"`
	Retries          int   `json:"retries,omitempty"`
	RequestsExact    bool  `json:"requests_exact,omitempty"`
	AppliedUnknown   int   `json:"applied_unknown,omitempty"`
	ExpectedReceived int64 `json:"expected_received,omitempty"`
	exactReceived    bool  // ExpectedReceived is known: received must equal it

	StatsExact bool `json:"stats_exact"`
	AuditExact bool `json:"audit_exact"`
	// NotMeasured are the checks that could not be made (their booleans
	// and counts above are then not results): see Readback.Gaps.
	NotMeasured []NotMeasured `json:"not_measured,omitempty"`
	Stats       Stats         `json:"stats"` // After - Before
	Examples    []history.Key `json:"examples,omitempty"`
	Violations  []string      `json:"violations,omitempty"`
}

// Check judges a history against what was read back, in four parts: tally
// the history's publishes by key and outcome, compare the keys with those
// stored (lost, duplicated, unexpected, recovered), then check the stats
// and the audit.
//
// Stats are exact when, over the run (After - Before):
//   - the queue drained (queue_depth and pending 0) and nothing was dead-lettered;
//   - unique_processed equals the number of distinct stored keys;
//   - received == unique_processed + duplicated_dropped;
//   - acknowledged copies <= received <= acknowledged + unknown copies
//     (every copy of an acknowledged request entered the stream once; part
//     of an unknown request may have; nothing of a definitely failed one);
//   - with keys and the applied entries read back (rb.Applied), equality
//     instead: received == the copies of the requests applied.
//
// With keys, requests are exact when, for each request signature (the
// requests with the same keys, nearly always one), the entries applied
// number at least its acknowledged requests and at most its acknowledged
// + unknown ones (each request applied at most once, each acknowledged
// one exactly once), and no applied entry matches no request.
//
// The audit is exact when processed == unique_processed, dropped ==
// duplicated_dropped and received == queued == received(stats) + failed.
//
// What the target did not offer (rb.Gaps) is not measured: those checks
// are listed in NotMeasured, add no violation, and their fields are false
// or zero, never a pass. A run with a check not measured can still be
// valid for the checks that were made; the tables say which were not.
func Check(ops []history.Op, rb Readback) Result {
	var r Result
	reqs := history.Requests(ops)
	keys := r.tally(reqs)
	if g := rb.Gaps.Stored; g != "" {
		r.Attempted = len(keys)
		for _, ks := range keys {
			if ks.acked > 0 {
				r.Acknowledged++
			}
		}
		r.notMeasured(g, CheckLost, CheckDuplicated, CheckUnexpected)
	} else {
		r.compare(keys, rb.Stored)
	}
	r.checkRequests(reqs, rb)
	r.checkStats(rb)
	r.checkAudit(rb)
	r.Valid = len(r.Violations) == 0
	return r
}

func (r *Result) notMeasured(reason string, checks ...string) {
	for _, c := range checks {
		r.NotMeasured = append(r.NotMeasured, NotMeasured{Check: c, Reason: reason})
	}
}

// Measured reports whether check (a Check* name) was made.
func (r Result) Measured(check string) bool {
	for _, n := range r.NotMeasured {
		if n.Check == check {
			return false
		}
	}
	return true
}

// keyState is what the history says of one key: how many copies of it
// were attempted, and with which outcome.
type keyState struct{ attempted, acked, failed, unknown int }

// tally counts the publish requests by outcome and the event copies by
// key and outcome.
func (r *Result) tally(reqs []history.Request) map[history.Key]*keyState {
	keys := map[history.Key]*keyState{}
	for _, p := range reqs {
		if p.IdemKey != "" {
			r.Keyed = true
			r.Retries += len(p.Attempts) - 1
		}
		unknownBefore := false
		for _, a := range p.Attempts {
			switch a.Outcome() {
			case history.Fail:
				r.FailedAttempts++
			case history.Info:
				r.UnknownAttempts++
				unknownBefore = true
			case history.OK:
				if unknownBefore && a.Completion.Value == history.Replayed {
					r.ReplayedAfterUnknown++
				}
			}
		}
		out := p.Outcome()
		switch out {
		case history.OK:
			r.Requests.OK++
		case history.Fail:
			r.Requests.Fail++
		default:
			r.Requests.Info++
		}
		for _, k := range p.Keys {
			ks := keys[k]
			if ks == nil {
				ks = &keyState{}
				keys[k] = ks
			}
			ks.attempted++
			r.AttemptedCopies++
			switch out {
			case history.OK:
				ks.acked++
				r.AcknowledgedCopies++
			case history.Fail:
				ks.failed++
				r.FailedCopies++
			default:
				ks.unknown++
				r.UnknownCopies++
			}
		}
	}
	return keys
}

// compare sets the keys attempted, acknowledged and stored, and finds the
// lost, recovered, duplicated and unexpected ones (with up to 10 examples,
// in key order, for reproducible reports).
func (r *Result) compare(keys map[history.Key]*keyState, stored map[history.Key]int) {
	example := func(k history.Key) {
		if len(r.Examples) < 10 {
			r.Examples = append(r.Examples, k)
		}
	}
	r.Attempted = len(keys)
	sorted := make([]history.Key, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sortKeys(sorted)
	for _, k := range sorted {
		ks := keys[k]
		n := stored[k]
		if ks.acked > 0 {
			r.Acknowledged++
			if n == 0 {
				r.Lost++
				example(k)
			}
		} else if n > 0 {
			if ks.unknown > 0 {
				r.Recovered++
			} else {
				r.Unexpected++ // only in definitely failed requests
				example(k)
			}
		}
	}
	storedKeys := make([]history.Key, 0, len(stored))
	for k, n := range stored {
		if n > 0 {
			storedKeys = append(storedKeys, k)
		}
	}
	sortKeys(storedKeys)
	for _, k := range storedKeys {
		r.Stored++
		if stored[k] > 1 {
			r.Duplicated++
			example(k)
		}
		if keys[k] == nil {
			r.Unexpected++
			example(k)
		}
	}

	if r.Lost > 0 {
		r.violate("%d acknowledged keys lost", r.Lost)
	}
	if r.Duplicated > 0 {
		r.violate("%d keys stored more than once", r.Duplicated)
	}
	if r.Unexpected > 0 {
		r.violate("%d stored keys never attempted or only definitely failed", r.Unexpected)
	}
}

// checkStats records the /stats delta of the run and whether it is exact
// (see Check); it needs compare's Stored and tally's copies.
func (r *Result) checkStats(rb Readback) {
	s := rb.After.Sub(rb.Before)
	r.Stats = s
	g := rb.Gaps
	if g.Queue != "" {
		r.notMeasured(g.Queue, CheckQueue)
	}
	if g.DeadLetters != "" {
		r.notMeasured(g.DeadLetters, CheckDeadLetters)
	}
	if g.Counters != "" || g.Stored != "" {
		// Without counters, or without the stored keys they are compared
		// with, exactness cannot be judged; a drain that failed still can.
		r.notMeasured(cmp.Or(g.Counters, g.Stored), CheckStatsExact)
		if !rb.Drained {
			r.violate("stats: queue not drained")
		}
		return
	}
	r.StatsExact = true
	wrong := func(format string, args ...any) {
		r.StatsExact = false
		r.violate("stats: "+format, args...)
	}
	if !rb.Drained || s.QueueDepth != 0 || s.Pending != 0 {
		wrong("queue not drained (queue_depth %d, pending %d)", s.QueueDepth, s.Pending)
	}
	if g.DeadLetters == "" && s.DeadLettered != 0 {
		wrong("%d entries dead-lettered", s.DeadLettered)
	}
	if s.UniqueProcessed != int64(r.Stored) {
		wrong("unique_processed grew by %d, but %d distinct keys are stored", s.UniqueProcessed, r.Stored)
	}
	if s.Received != s.UniqueProcessed+s.DuplicatedDropped {
		wrong("received %d != unique_processed %d + duplicated_dropped %d", s.Received, s.UniqueProcessed, s.DuplicatedDropped)
	}
	if r.exactReceived {
		if s.Received != r.ExpectedReceived {
			wrong("received grew by %d, but the requests applied hold %d copies (%d acknowledged, %d of requests with an unknown outcome)",
				s.Received, r.ExpectedReceived, r.AcknowledgedCopies, r.ExpectedReceived-r.AcknowledgedCopies)
		}
		return
	}
	if s.Received < r.AcknowledgedCopies {
		wrong("received grew by %d, fewer than the %d acknowledged copies", s.Received, r.AcknowledgedCopies)
	}
	if s.Received > r.AcknowledgedCopies+r.UnknownCopies {
		wrong("received grew by %d, more than the %d acknowledged + %d unknown copies sent", s.Received, r.AcknowledgedCopies, r.UnknownCopies)
	}
}

// Signature identifies a request by its keys (sorted, so the order of
// the rows read back does not matter): Readback.Applied is keyed on it.
func Signature(keys []history.Key) string {
	ss := make([]string, len(keys))
	for i, k := range keys {
		ss[i] = k.Topic + "\x00" + k.ID
	}
	sort.Strings(ss)
	return strings.Join(ss, "\x01")
}

// checkRequests checks, when the requests carried keys, that each was
// applied at most once and each acknowledged one exactly once, from the
// entries applied (rb.Applied), and sets the received count that checkStats
// then demands (see Check).
func (r *Result) checkRequests(reqs []history.Request, rb Readback) {
	if !r.Keyed {
		return
	}
	if rb.Applied == nil {
		r.notMeasured("the applied entries were not read back (a subject's store): received is checked by the bound", CheckRequests)
		return
	}
	type class struct {
		acked, unknown, size int
		example              history.Key
	}
	classes := map[string]*class{}
	var sigs []string
	for _, q := range reqs {
		sig := Signature(q.Keys)
		c := classes[sig]
		if c == nil {
			c = &class{size: len(q.Keys)}
			if len(q.Keys) > 0 {
				c.example = q.Keys[0]
			}
			classes[sig] = c
			sigs = append(sigs, sig)
		}
		switch q.Outcome() {
		case history.OK:
			c.acked++
		case history.Info:
			c.unknown++
		}
	}
	sort.Strings(sigs)
	r.RequestsExact = true
	var twice, missing, stray int
	var twiceEx, missingEx history.Key
	for _, sig := range sigs {
		c, n := classes[sig], rb.Applied[sig]
		switch {
		case n > c.acked+c.unknown:
			if twice == 0 {
				twiceEx = c.example
			}
			twice += n - c.acked - c.unknown
		case n < c.acked:
			if missing == 0 {
				missingEx = c.example
			}
			missing += c.acked - n
		}
		r.AppliedUnknown += max(0, min(n-c.acked, c.unknown))
		r.ExpectedReceived += int64(n * c.size)
	}
	for sig, n := range rb.Applied {
		if classes[sig] == nil && n > 0 {
			stray += n
		}
	}
	wrong := func(format string, args ...any) {
		r.RequestsExact = false
		r.violate("requests: "+format, args...)
	}
	if twice > 0 {
		wrong("%d applications more than requests sent (a request applied twice; e.g. the request with %s/%s)", twice, twiceEx.Topic, twiceEx.ID)
	}
	if missing > 0 {
		wrong("%d acknowledged requests not applied (e.g. the request with %s/%s)", missing, missingEx.Topic, missingEx.ID)
	}
	if stray > 0 {
		wrong("%d applied entries match no request sent", stray)
	}
	r.exactReceived = true
}

// checkAudit checks the /audit/summary delta against the stats (see
// Check). Without an audit read after the run, or without the counters it
// is compared with, it is not measured.
func (r *Result) checkAudit(rb Readback) {
	switch {
	case rb.Gaps.Audit != "":
		r.notMeasured(rb.Gaps.Audit, CheckAuditExact)
		return
	case rb.AuditAfter == nil:
		r.notMeasured("no /audit/summary read after the run", CheckAuditExact)
		return
	case !r.Measured(CheckStatsExact):
		r.notMeasured("the stats it is compared with are not measured", CheckAuditExact)
		return
	}
	r.AuditExact = true
	var before Audit
	if rb.AuditBefore != nil {
		before = *rb.AuditBefore
	}
	a := rb.AuditAfter.Sub(before)
	s := r.Stats
	wrong := func(format string, args ...any) {
		r.AuditExact = false
		r.violate("audit: "+format, args...)
	}
	if a.Processed != s.UniqueProcessed {
		wrong("%d PROCESSED, unique_processed %d", a.Processed, s.UniqueProcessed)
	}
	if a.Dropped != s.DuplicatedDropped {
		wrong("%d DROPPED, duplicated_dropped %d", a.Dropped, s.DuplicatedDropped)
	}
	if a.Received != a.Queued || a.Received != s.Received+a.Failed {
		wrong("%d RECEIVED, %d QUEUED, want both = received %d + failed %d", a.Received, a.Queued, s.Received, a.Failed)
	}
}

func (r *Result) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

func sortKeys(ks []history.Key) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Topic != ks[j].Topic {
			return ks[i].Topic < ks[j].Topic
		}
		return ks[i].ID < ks[j].ID
	})
}
