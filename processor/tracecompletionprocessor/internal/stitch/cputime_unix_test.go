//go:build unix

package stitch

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used. Spans per
// CPU second is what a core sustains, whatever else the machine runs: on a
// shared machine wall time also counts the time the benchmark waited for a
// core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
