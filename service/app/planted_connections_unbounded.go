//go:build plantedbugs

package app

import "net"

// connectionsUnbounded is the planted bug connections-unbounded
// (service/planted): MAX_CONNECTIONS is read but the server accepts every
// connection, each with its goroutine and buffers.
func connectionsUnbounded(_, raw net.Listener) net.Listener { return raw }
