package checker_test

import (
	"testing"

	"github.com/chronicleweaver/chronicleweaver/harness/checker"
	"github.com/chronicleweaver/chronicleweaver/harness/history"
)

// What a target does not offer is not measured: never a pass, never a
// violation, and listed with its reason.
func TestGapsAreNotMeasured(t *testing.T) {
	t.Parallel()
	ops := build(req{keys: []string{"a/1", "a/2"}, out: history.OK})
	audit := &checker.Audit{Received: 2, Queued: 2, Processed: 2}

	// Everything offered: every check made.
	full := checker.Check(ops, checker.Readback{Stored: stored("a/1", "a/2"), After: stats(2, 2, 0), Drained: true, AuditAfter: audit})
	if !full.Valid || !full.StatsExact || !full.AuditExact || len(full.NotMeasured) != 0 {
		t.Fatalf("full read-back: %+v", full)
	}

	// No counters, no audit, no queue state: a lost key is still found,
	// stats and audit are not measured (false, not "exact").
	r := checker.Check(ops, checker.Readback{Stored: stored("a/1"), Drained: true, Gaps: checker.Gaps{
		Counters: "no counters", Audit: "no audit", Queue: "no queue", DeadLetters: "no dead letters"}})
	if r.Valid || r.Lost != 1 {
		t.Errorf("the lost key must still be found: %+v", r)
	}
	for _, c := range []string{checker.CheckStatsExact, checker.CheckAuditExact, checker.CheckQueue, checker.CheckDeadLetters} {
		if r.Measured(c) {
			t.Errorf("%s measured without what it needs", c)
		}
	}
	if r.StatsExact || r.AuditExact {
		t.Errorf("a check not made must not read as passed: %+v", r)
	}
	if len(r.Violations) != 1 {
		t.Errorf("only the lost key is a violation: %v", r.Violations)
	}

	// No read-back of stored keys: lost, duplicated and unexpected are not
	// measured, the run is not invalid for them, and the stats that need
	// the stored keys are not measured either.
	r = checker.Check(ops, checker.Readback{After: stats(2, 2, 0), Drained: true, AuditAfter: audit, Gaps: checker.Gaps{Stored: "capped /events"}})
	for _, c := range []string{checker.CheckLost, checker.CheckDuplicated, checker.CheckUnexpected, checker.CheckStatsExact, checker.CheckAuditExact} {
		if r.Measured(c) {
			t.Errorf("%s measured without the stored keys", c)
		}
	}
	if !r.Valid || r.Acknowledged != 2 || r.Attempted != 2 {
		t.Errorf("without stored keys: %+v", r)
	}

	// An audit read that failed is not measured (it used to pass by default).
	r = checker.Check(ops, checker.Readback{Stored: stored("a/1", "a/2"), After: stats(2, 2, 0), Drained: true})
	if r.Measured(checker.CheckAuditExact) || r.AuditExact || !r.Valid {
		t.Errorf("no audit read: %+v", r)
	}

	// A drain that failed is a violation even without counters.
	r = checker.Check(ops, checker.Readback{Stored: stored("a/1", "a/2"), Drained: false, Gaps: checker.Gaps{Counters: "no counters"}})
	if r.Valid {
		t.Errorf("an undrained queue must be a violation: %+v", r)
	}
}
