//go:build plantedbugs

package app_test

import (
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/config"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// Each planted bug plugs into its seam and the service still starts and
// serves: without a fault to expose it, a batch with a duplicate ends with
// exact stats (the scenarios and properties are what catch the bugs).
// select-then-insert has also dropped the events table's unique key.
func TestPlantedBugsPlugIn(t *testing.T) {
	t.Parallel()
	for _, bug := range planted.Names() {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			tb := newTestbed(t, func(c *config.Config) {
				c.PlantedBug = bug
				c.WorkerCount = 2
			})
			mustf(t, tb.publish(ev("t", "1"), ev("t", "2"), ev("t", "1")) == 200, "publish")
			var s stats
			waitFor(t, 30*time.Second, "the batch applied and counted", func() bool {
				s = tb.stats()
				return s.Received == 3 && s.UniqueProcessed == 2 && s.DuplicatedDropped == 1
			})
			mustf(t, tb.count(`SELECT count(*) FROM events`) == 2, "rows: %d", tb.count(`SELECT count(*) FROM events`))
			pkeys := tb.count(`SELECT count(*) FROM pg_constraint WHERE conname = 'events_pkey'`)
			wantKeys := int64(1)
			if bug == planted.SelectThenInsert {
				wantKeys = 0
			}
			mustf(t, pkeys == wantKeys, "%d events_pkey constraints, want %d", pkeys, wantKeys)
		})
	}
}

// dedup-event-id is plugged in where it matters: one event id under two
// topics is stored once, the other copy counted as its duplicate (the
// production store keeps both; the generators' shared_ids is what makes
// the harness see the difference).
func TestDedupEventIDKeysOnEventIDAlone(t *testing.T) {
	t.Parallel()
	tb := newTestbed(t, func(c *config.Config) {
		c.PlantedBug = planted.DedupEventID
		c.WorkerCount = 2
	})
	mustf(t, tb.publish(ev("a", "1"), ev("b", "1"), ev("a", "2")) == 200, "publish")
	var s stats
	waitFor(t, 30*time.Second, "the batch applied and counted", func() bool {
		s = tb.stats()
		return s.Received == 3 && s.UniqueProcessed+s.DuplicatedDropped == 3
	})
	mustf(t, s.UniqueProcessed == 2 && s.DuplicatedDropped == 1, "stats %+v: want b/1 dropped as a duplicate of a/1", s)
	mustf(t, tb.count(`SELECT count(*) FROM events WHERE event_id = '1'`) == 1, "rows of event id 1: %d, want 1", tb.count(`SELECT count(*) FROM events WHERE event_id = '1'`))
}
