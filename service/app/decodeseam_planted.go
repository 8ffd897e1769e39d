//go:build plantedbugs

package app

import (
	"github.com/chronicleweaver/chronicleweaver/service/event"
	"github.com/chronicleweaver/chronicleweaver/service/planted"
)

// decodeSeam returns the request decoder of the publish path: the
// production one, unless the planted bug selected by CHRONICLE_PLANTED_BUG
// lives in the validator (a negative control, see service/planted).
// Config.Validate has checked the selection; workerSeams logs that a bug is
// active.
func (m *Main) decodeSeam() event.Decoder {
	if m.Config.PlantedBug == planted.ArraysUnchecked {
		return event.DecodeArraysUnchecked
	}
	return event.DecodeRequest
}
