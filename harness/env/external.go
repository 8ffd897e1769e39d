package env

import (
	"context"
	"fmt"
	"time"
)

// external is a service that runs elsewhere: the harness can send it load
// and read it back, but inject no fault.
type external struct {
	target      string
	databaseURL string
}

var _ Env = (*external)(nil)

// External is an already running service at target (its base URL, e.g.
// "http://127.0.0.1:8080"). databaseURL is where the checker reads stored
// events ("" to walk GET /events instead). Every fault and Usage return
// ErrUnsupported; Close does nothing.
func External(target, databaseURL string) Env {
	return &external{target: target, databaseURL: databaseURL}
}

func (e *external) Targets() []string   { return []string{e.target} }
func (e *external) DatabaseURL() string { return e.databaseURL }
func (e *external) Nodes() []string     { return nil } // nothing can be targeted

func (e *external) unsupported(op, node string) error {
	return fmt.Errorf("env: %s %s on an external service: %w", op, node, ErrUnsupported)
}

func (e *external) Kill(_ context.Context, node string) error {
	return e.unsupported("kill", node)
}

func (e *external) Terminate(_ context.Context, node string) error {
	return e.unsupported("terminate", node)
}

func (e *external) Restart(_ context.Context, node string) error {
	return e.unsupported("restart", node)
}

func (e *external) Pause(_ context.Context, node string) error {
	return e.unsupported("pause", node)
}

func (e *external) Resume(_ context.Context, node string) error {
	return e.unsupported("resume", node)
}

func (e *external) SetLink(_ context.Context, dep string, _ LinkMode, _ time.Duration) error {
	return e.unsupported("set the link to", dep)
}

func (e *external) FillDisk(_ context.Context, dep string) error {
	return e.unsupported("fill the disk of", dep)
}

func (e *external) FreeDisk(_ context.Context, dep string) error {
	return e.unsupported("free the disk of", dep)
}

func (e *external) ServiceLog(_ context.Context, node string) ([]byte, error) {
	return nil, e.unsupported("read the log of", node)
}
func (e *external) Usage(node string) (float64, int64, error) {
	return 0, 0, e.unsupported("measure", node)
}

func (e *external) Info() Info { return Info{Backend: "external", Services: 1} }

func (e *external) Close() error { return nil }
