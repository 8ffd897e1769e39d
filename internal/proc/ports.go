package proc

import (
	"fmt"
	"net"
	"sync"
)

// registry is a set of TCP ports handed out and not yet released.
type registry struct {
	mu   sync.Mutex
	held map[int]bool
	// pick returns a port the kernel says is free now, and a function that
	// frees it again (called once the whole batch is picked, so that one
	// batch gets distinct ports).
	pick func() (port int, free func(), err error)
}

// ports is the registry of this process: every server and service instance
// started through this package's users takes its port from it.
var ports = &registry{held: map[int]bool{}, pick: pickFree}

// pickFree listens on a free port of every interface (a service listens
// on ":PORT"; a port free there is free on 127.0.0.1 too).
func pickFree() (int, func(), error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, nil, err
	}
	return ln.Addr().(*net.TCPAddr).Port, func() { ln.Close() }, nil
}

// ReservePorts returns n distinct TCP ports, free now, that no holder in
// this process has reserved and not released. They stay reserved until
// ReleasePorts, whether or not anything listens on them meanwhile. A
// program outside this process may still take one before its holder binds
// it.
func ReservePorts(n int) ([]int, error) { return ports.reserve(n) }

// ReservePort is ReservePorts(1).
func ReservePort() (int, error) {
	p, err := ports.reserve(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// ReleasePorts gives ports back (0 and ports not reserved are ignored).
func ReleasePorts(port ...int) { ports.release(port...) }

// PortReserved reports whether port is reserved.
func PortReserved(port int) bool { return ports.reserved(port) }

func (r *registry) reserve(n int) ([]int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var frees []func()
	defer func() {
		for _, free := range frees {
			free()
		}
	}()
	var out []int
	var lastErr error
	for tries := 0; len(out) < n; tries++ {
		if tries >= 100*n {
			for _, p := range out {
				delete(r.held, p)
			}
			return nil, fmt.Errorf("proc: no free TCP port in %d tries (last error: %v)", tries, lastErr)
		}
		port, free, err := r.pick()
		if err != nil {
			lastErr = err
			continue
		}
		frees = append(frees, free)
		if !r.held[port] {
			r.held[port] = true
			out = append(out, port)
		}
	}
	return out, nil
}

func (r *registry) release(ports ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ports {
		delete(r.held, p)
	}
}

func (r *registry) reserved(port int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held[port]
}
