//go:build plantedbugs

package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/chronicleweaver/chronicleweaver/service/planted"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

// The planted bug deliveries-uncounted (delivery counts ignored) is caught
// by the crash loop of TestCrashLoopEntryDeadLettered: the entry crashes
// its worker three times MAX_DELIVERIES over and is never dead-lettered.
func TestCrashLoopCatchesDeliveriesUncounted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := newCrashBed(t, ctx)
	pool, crashes := b.loop(queue.DeliveriesUncounted{Queue: b.q}, 3*maxDeliveries)
	b.kill(pool)
	b.stopPublishing()
	d := b.depth()
	if d.DeadLettered != 0 || crashes < 3*maxDeliveries {
		t.Fatalf("planted bug %s not caught: %d crashes, %d dead-lettered", planted.DeliveriesUncounted, crashes, d.DeadLettered)
	}
	t.Logf("caught: %d crashes, the entry still pending (pending %d)", crashes, d.Pending)
}
