//go:build !plantedbugs

package app

import "github.com/chronicleweaver/chronicleweaver/service/api"

// apiSeam returns the HTTP edge's options as configured. (A build with the
// plantedbugs tag may loosen one of the edge's guards instead; see
// apiseam_planted.go.)
func (m *Main) apiSeam(o api.Options) api.Options { return o }
