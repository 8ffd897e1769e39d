//go:build plantedbugs

package queue

import (
	"context"
	"errors"
)

// OKOnTimeout is the planted bug publish-ok-on-timeout, a negative control
// (see service/planted): the publish path's Append takes an append that ran
// out of time for one that went through ("Redis is just slow; it will get
// there"), so /publish answers 200 for a request whose entry may never have
// been sent. A Redis that stays silent past PUBLISH_TIMEOUT (paused, not
// refusing) exposes it: the requests still waiting for their turn are
// acknowledged and never appended. Every other method is the Queue's own.
type OKOnTimeout struct{ *Queue }

// Append is Queue.Append, with a timeout reported as success.
func (q OKOnTimeout) Append(ctx context.Context, m Message) (string, error) {
	id, err := q.Queue.Append(ctx, m)
	if errors.Is(err, context.DeadlineExceeded) {
		return "0-0", nil
	}
	return id, err
}
