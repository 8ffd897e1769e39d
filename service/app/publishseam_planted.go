//go:build plantedbugs

package app

import (
	"github.com/chronicleweaver/chronicleweaver/service/api"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
	"github.com/chronicleweaver/chronicleweaver/service/queue"
)

// publishSeam returns the queue the publish path appends to: the
// production one, unless the planted bug selected by CHRONICLE_PLANTED_BUG
// lives in the publish path's append (a negative control, see
// service/planted). Config.Validate has checked the selection; workerSeams
// logs that a bug is active.
func (m *Main) publishSeam() api.Queue {
	switch m.Config.PlantedBug {
	case planted.PublishOKOnTimeout:
		return queue.OKOnTimeout{Queue: m.queue}
	case planted.IdempotencyForgotten:
		return queue.IdempotencyForgotten{Queue: m.queue}
	case planted.PublishOKOnDiskError:
		return queue.OKOnDiskError{Queue: m.queue}
	}
	return m.queue
}
