package compose

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives the smoke test (an
// HTTP client's connection, a command's output copier). No ignore options
// are needed: the only docker client opened (env.DockerAvailable,
// env.EnsureImages) is closed before they return.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
