//go:build plantedbugs

package app_test

import (
	"testing"

	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// TestLimitChecksCatchTheirPlantedBugs: each guard's check (the one its
// production test runs) fails with the bug that removes the guard.
// memory-limit-ignored is checked apart: the limit is the process's, so
// its check (as TestMemoryLimitSet) runs alone.
func TestLimitChecksCatchTheirPlantedBugs(t *testing.T) {
	v := memoryLimitViolation(t, planted.MemoryLimitIgnored)
	mustf(t, v != "", "planted bug %s not caught by the memory limit check (TestMemoryLimitSet)", planted.MemoryLimitIgnored)
	t.Logf("%s caught: %s", planted.MemoryLimitIgnored, v)

	for _, c := range []struct {
		bug, check string
		violation  func(*testing.T, string) string
	}{
		{planted.ConnectionsUnbounded, "TestMaxConnections", maxConnectionsViolation},
		{planted.ReadsUnlimited, "TestHostileReadConcurrency", readConcurrencyViolation},
		{planted.QueueBytesUnbounded, "TestHostileQueueMaxBytes", queueMaxBytesViolation},
		{planted.SniffableAnswers, "TestNosniffOnEveryAnswer", nosniffViolation},
	} {
		t.Run(c.bug, func(t *testing.T) {
			t.Parallel()
			v := c.violation(t, c.bug)
			mustf(t, v != "", "planted bug %s not caught by the check of %s", c.bug, c.check)
			t.Logf("caught: %s", v)
		})
	}
}
