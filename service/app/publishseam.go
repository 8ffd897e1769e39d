//go:build !plantedbugs

package app

import "github.com/chronicleweaver/chronicleweaver/service/api"

// publishSeam returns the queue the publish path appends to: the
// production one. (A build with the plantedbugs tag may hand the HTTP edge
// a planted bug's queue instead; see publishseam_planted.go.)
func (m *Main) publishSeam() api.Queue { return m.queue }
