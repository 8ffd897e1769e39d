package proc

import (
	"fmt"
	"syscall"
	"time"
)

// Usage is what a process, or a tree of processes, has used.
type Usage struct {
	CPU time.Duration // user + system time
	// PeakRSS is the largest peak resident set of any one process measured,
	// in bytes (VmHWM; as getrusage reports it for children: the maximum,
	// not a sum, since processes peak at different times and share pages).
	PeakRSS int64
	// RSS is the resident set now, in bytes, summed over the live processes
	// measured (a page shared by several counts in each); 0 once exited.
	RSS int64
	// Procs is the number of live processes measured; 0 once exited.
	Procs int
}

// CPUSeconds is CPU in seconds.
func (u Usage) CPUSeconds() float64 { return u.CPU.Seconds() }

// Add returns the usage of u and v together, as of processes that ran one
// after the other: CPU, RSS and Procs add up, PeakRSS is the larger.
func (u Usage) Add(v Usage) Usage {
	return Usage{CPU: u.CPU + v.CPU, PeakRSS: max(u.PeakRSS, v.PeakRSS), RSS: u.RSS + v.RSS, Procs: u.Procs + v.Procs}
}

// clockTick is the unit of the times in /proc/PID/stat (USER_HZ, 100 on
// Linux whatever the kernel's own tick).
const clockTick = 10 * time.Millisecond

// ReadUsage reads one process's own CPU time (its threads', not its
// children's) and resident set from /proc. It fails when pid is gone.
func ReadUsage(pid int) (Usage, error) {
	s, err := stat(pid)
	if err != nil {
		return Usage{}, fmt.Errorf("usage of pid %d: %w", pid, err)
	}
	u := Usage{CPU: time.Duration(s.UTime+s.STime) * clockTick, Procs: 1}
	u.PeakRSS, u.RSS = memory(pid)
	return u, nil
}

// ReadTreeUsage reads pid and its live descendants from /proc: the CPU time
// of each (its own and that of the children it has reaped, which includes
// theirs in turn) and their resident sets. A process is read before its
// children are listed, so a child reaped meanwhile is missed by this
// reading rather than counted twice. It fails when pid is gone.
func ReadTreeUsage(pid int) (Usage, error) {
	var total Usage
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		s, err := stat(p)
		if err != nil {
			if p == pid {
				return Usage{}, fmt.Errorf("usage of pid %d: %w", pid, err)
			}
			continue // exited meanwhile: its time is now its parent's
		}
		u := Usage{CPU: time.Duration(s.UTime+s.STime+uint(max(s.CUTime+s.CSTime, 0))) * clockTick, Procs: 1}
		u.PeakRSS, u.RSS = memory(p)
		total = total.Add(u)
		queue = append(queue, Children(p)...)
	}
	return total, nil
}

// memory returns pid's VmHWM and VmRSS in bytes (0 for a zombie, which has
// no memory left, or when pid is gone).
func memory(pid int) (peak, rss int64) {
	p, err := procOf(pid)
	if err != nil {
		return 0, 0
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, 0
	}
	return int64(st.VmHWM), int64(st.VmRSS)
}

// Usage is what the process and its descendants have used so far. While it
// runs it is read from /proc (ReadTreeUsage); once it has been reaped it is
// the kernel's account of the wait: its own time and that of every
// descendant it waited for, and the largest peak resident set among them.
// CPU and PeakRSS never decrease between calls: a reading lower than an
// earlier one (a child reaped during the walk) keeps the earlier values.
func (p *Process) Usage() Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Exited() {
		if ru, ok := p.state.SysUsage().(*syscall.Rusage); ok {
			p.usage.CPU = max(p.usage.CPU, duration(ru.Utime)+duration(ru.Stime))
			p.usage.PeakRSS = max(p.usage.PeakRSS, ru.Maxrss<<10) // KiB on Linux
		}
		p.usage.RSS, p.usage.Procs = 0, 0
		return p.usage
	}
	if u, err := ReadTreeUsage(p.pid); err == nil {
		p.usage.CPU = max(p.usage.CPU, u.CPU)
		p.usage.PeakRSS = max(p.usage.PeakRSS, u.PeakRSS)
		p.usage.RSS, p.usage.Procs = u.RSS, u.Procs
	}
	return p.usage
}

func duration(tv syscall.Timeval) time.Duration {
	return time.Duration(tv.Sec)*time.Second + time.Duration(tv.Usec)*time.Microsecond
}
