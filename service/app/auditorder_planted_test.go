//go:build plantedbugs

package app_test

import (
	"testing"

	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// The planted bug queued-at-millis (queue time stored to the millisecond,
// receive time to the microsecond) is caught by the audit order check of
// TestAuditActionOrderPerEvent, and only by it: the counts stay exact.
func TestAuditOrderCatchesQueuedAtMillis(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, func(c *config.Config) { c.PlantedBug = planted.QueuedAtMillis })
	v := auditOrderViolation(tb)
	mustf(t, v != "", "planted bug %s not caught by the audit order check", planted.QueuedAtMillis)
	t.Logf("caught: %s", v)
	s := tb.stats()
	mustf(t, s.Received == 200 && s.UniqueProcessed == 150 && s.DuplicatedDropped == 50, "stats %+v: the bug must not change the counts", s)
}
