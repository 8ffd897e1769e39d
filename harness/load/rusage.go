package load

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time (user + system) this process has used so
// far, from getrusage(RUSAGE_SELF); -1 when it cannot be read.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
