//go:build plantedbugs

package app_test

import (
	"testing"

	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// memory-limit-ignored is caught by the check of TestMemoryLimitSet (not
// parallel, as it: the limit is the process's).
func TestMemoryLimitCatchesMemoryLimitIgnored(t *testing.T) {
	v := memoryLimitViolation(t, planted.MemoryLimitIgnored)
	mustf(t, v != "", "planted bug %s not caught by the memory limit check", planted.MemoryLimitIgnored)
	t.Logf("caught: %s", v)
}

// connections-unbounded is caught by the check of TestMaxConnections.
func TestMaxConnectionsCatchesConnectionsUnbounded(t *testing.T) {
	t.Parallel()
	v := maxConnectionsViolation(t, planted.ConnectionsUnbounded)
	mustf(t, v != "", "planted bug %s not caught by the connections check", planted.ConnectionsUnbounded)
	t.Logf("caught: %s", v)
}

// reads-unlimited is caught by the check of TestHostileReadConcurrency.
func TestReadConcurrencyCatchesReadsUnlimited(t *testing.T) {
	t.Parallel()
	v := readConcurrencyViolation(t, planted.ReadsUnlimited)
	mustf(t, v != "", "planted bug %s not caught by the read concurrency check", planted.ReadsUnlimited)
	t.Logf("caught: %s", v)
}

// queue-bytes-unbounded is caught by the check of TestHostileQueueMaxBytes.
func TestQueueMaxBytesCatchesQueueBytesUnbounded(t *testing.T) {
	t.Parallel()
	v := queueMaxBytesViolation(t, planted.QueueBytesUnbounded)
	mustf(t, v != "", "planted bug %s not caught by the queue bytes check", planted.QueueBytesUnbounded)
	t.Logf("caught: %s", v)
}

// sniffable-answers is caught by the check of TestNosniffOnEveryAnswer.
func TestNosniffCatchesSniffableAnswers(t *testing.T) {
	t.Parallel()
	v := nosniffViolation(t, planted.SniffableAnswers)
	mustf(t, v != "", "planted bug %s not caught by the nosniff check", planted.SniffableAnswers)
	t.Logf("caught: %s", v)
}
