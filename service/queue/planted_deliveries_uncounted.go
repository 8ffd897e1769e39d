//go:build plantedbugs

package queue

import "context"

// DeliveriesUncounted is the planted bug deliveries-uncounted, a negative
// control (see service/planted): the pending list is read without Redis's
// delivery counter ("a crash is not a failure"), every pending entry looks
// delivered once, so an entry whose processing kills the process is
// redelivered after every restart, forever, with the entries read in its
// batch. Every other method is the Queue's own.
type DeliveriesUncounted struct{ *Queue }

// Pending is Queue.Pending with every delivery count reported as 1.
func (q DeliveriesUncounted) Pending(ctx context.Context, consumer, after string, count int) ([]Pending, error) {
	ps, err := q.Queue.Pending(ctx, consumer, after, count)
	for i := range ps {
		ps[i].Deliveries = 1
	}
	return ps, err
}
