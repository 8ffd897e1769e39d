package env

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives its tests: a
// proxy's pumps, a process's waiter, a probe. It needs no ignore options:
// the docker tests close every client they open (the backend's in Close,
// DockerAvailable's and ImageExists's at once), so nothing of the docker
// client or testcontainers is left running either.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goroutine leak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
