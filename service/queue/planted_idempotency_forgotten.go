//go:build plantedbugs

package queue

import "context"

// IdempotencyForgotten is the planted bug idempotency-forgotten, a
// negative control (see service/planted): the publish path's Append
// ignores the request's idempotency key record ("the ledger already
// deduplicates"), so a request retried after a lost answer is appended,
// applied and counted a second time. Every other method is the Queue's own.
type IdempotencyForgotten struct{ *Queue }

// Append is Queue.Append without the key record.
func (q IdempotencyForgotten) Append(ctx context.Context, m Message) (string, error) {
	m.Idem = Idem{}
	return q.Queue.Append(ctx, m)
}
