//go:build !plantedbugs

package app

import (
	"context"

	"github.com/chronicleweaver/chronicleweaver/service/planted"
	"github.com/chronicleweaver/chronicleweaver/service/worker"
)

// workerSeams returns the queue and the store the workers use: the
// production ones. This build has no planted bug: it refuses a selection
// with one line, as Config.Validate does (for a Config that skipped it).
func (m *Main) workerSeams(context.Context) (worker.Queue, worker.Store, error) {
	if err := planted.Check(m.Config.PlantedBug); err != nil {
		return nil, nil, err
	}
	return m.queue, m.store, nil
}

// horizonSeam returns the queue the ledger pruner reads its horizon from:
// the production one.
func (m *Main) horizonSeam() worker.Horizon { return m.queue }
