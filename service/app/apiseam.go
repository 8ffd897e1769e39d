//go:build !plantedbugs

package app

import (
	"net"

	"github.com/chronicleweaver/chronicleweaver/service/api"
	"github.com/chronicleweaver/chronicleweaver/service/store"
)

// apiSeam returns the HTTP edge's options as configured. (A build with the
// plantedbugs tag may loosen one of the edge's guards instead; see
// apiseam_planted.go.)
func (m *Main) apiSeam(o api.Options) api.Options { return o }

// storeSeam returns the store's options as configured (a planted bug may
// loosen the bound on listed topics instead).
func (m *Main) storeSeam(o store.Options) store.Options { return o }

// memorySeam returns the memory limit as configured (a planted bug may
// ignore it instead).
func (m *Main) memorySeam(limit int64) int64 { return limit }

// listenerSeam returns the listener bounded by MAX_CONNECTIONS (a planted
// bug may hand back the unbounded one instead).
func (m *Main) listenerSeam(limited, _ net.Listener) net.Listener { return limited }
