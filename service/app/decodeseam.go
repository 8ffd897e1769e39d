//go:build !plantedbugs

package app

import "github.com/chronicleweaver/chronicleweaver/service/event"

// decodeSeam returns the request decoder of the publish path: the
// production one. (A build with the plantedbugs tag may hand the HTTP edge
// a planted bug's decoder instead; see decodeseam_planted.go.)
func (m *Main) decodeSeam() event.Decoder { return event.DecodeRequest }
