package proc

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

// offering is a picker that offers the given ports in turn, the way the
// kernel may offer a port again as soon as nothing listens on it.
func offering(ports ...int) func() (int, func(), error) {
	i := 0
	return func() (int, func(), error) {
		if i >= len(ports) {
			return 0, nil, errors.New("no more ports to offer")
		}
		i++
		return ports[i-1], func() {}, nil
	}
}

// TestRegistryKeepsADownServicesPort: a service instance that is down
// (killed, about to be restarted) listens nowhere, so the kernel may offer
// its port to the next server started; the registry refuses it until the
// instance releases it, and the restart finds its port free.
func TestRegistryKeepsADownServicesPort(t *testing.T) {
	t.Parallel()
	r := &registry{held: map[int]bool{}, pick: offering(5000, 5000, 5000, 5001, 5000, 5002, 5000)}
	svc, err := r.reserve(1)
	if err != nil || svc[0] != 5000 {
		t.Fatalf("service port: %v, %v", svc, err)
	}
	// The service is killed; a database starts meanwhile and is offered
	// the service's port twice.
	db, err := r.reserve(1)
	if err != nil || db[0] != 5001 {
		t.Fatalf("database port %v, %v; want 5001, not the down service's 5000", db, err)
	}
	if !r.reserved(5000) || !r.reserved(5001) {
		t.Error("reserved ports not reported")
	}
	// A batch gets distinct ports that nobody holds.
	batch, err := r.reserve(1)
	if err != nil || batch[0] != 5002 {
		t.Fatalf("third port %v, %v; want 5002", batch, err)
	}
	r.release(5000)
	if r.reserved(5000) {
		t.Error("released port still reserved")
	}
	if again, err := r.reserve(1); err != nil || again[0] != 5000 {
		t.Errorf("after release: %v, %v; want 5000 again", again, err)
	}
}

func TestRegistryGivesUp(t *testing.T) {
	t.Parallel()
	r := &registry{held: map[int]bool{7000: true}, pick: func() (int, func(), error) { return 7000, func() {}, nil }}
	if _, err := r.reserve(1); err == nil || !strings.Contains(err.Error(), "no free TCP port") {
		t.Fatalf("reserve with only a held port on offer: %v", err)
	}
	// A batch that fails half-way holds nothing afterwards.
	r = &registry{held: map[int]bool{}, pick: offering(7001)}
	if _, err := r.reserve(2); err == nil || !strings.Contains(err.Error(), "no more ports to offer") {
		t.Fatalf("reserve(2) with one port on offer: %v", err)
	}
	if r.reserved(7001) {
		t.Error("port of a failed batch still reserved")
	}
}

// TestReservePorts: the process's registry hands out distinct ports that
// can be bound on every interface and on 127.0.0.1, never the same one
// twice while it is held.
func TestReservePorts(t *testing.T) {
	t.Parallel()
	held, err := ReservePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	defer ReleasePorts(held...)
	seen := map[int]bool{}
	for _, p := range held {
		if seen[p] || !PortReserved(p) {
			t.Fatalf("ports %v: duplicate or not reserved", held)
		}
		seen[p] = true
		for _, addr := range []string{fmt.Sprintf(":%d", p), fmt.Sprintf("127.0.0.1:%d", p)} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("listen on reserved port %s: %v", addr, err)
				continue
			}
			ln.Close()
		}
	}
	for range 50 {
		p, err := ReservePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		ReleasePorts(p)
		if PortReserved(p) {
			t.Fatalf("port %d still reserved after release", p)
		}
	}
	ReleasePorts(0, -1) // ignored
}
