//go:build plantedbugs

package queue

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// OKOnDiskError is the planted bug publish-ok-on-disk-error, a negative
// control (see service/planted): the publish path's Append takes Redis's
// refusal to write while its AOF cannot be written (a MISCONF error reply:
// the disk is full) for a passing hiccup and reports the append as done
// ("Redis answered, so it has it"), so /publish answers 200 for a request
// that was never appended. Only a full disk under Redis exposes it. Every
// other method is the Queue's own.
type OKOnDiskError struct{ *Queue }

// Append is Queue.Append, with a MISCONF refusal reported as success.
func (q OKOnDiskError) Append(ctx context.Context, m Message) (string, error) {
	id, err := q.Queue.Append(ctx, m)
	var rerr redis.Error
	if errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "MISCONF") {
		return "0-0", nil
	}
	return id, err
}
