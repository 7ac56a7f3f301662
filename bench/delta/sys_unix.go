//go:build unix

package main

import (
	"errors"
	"os"
	"syscall"
)

// syncDisks writes back every dirty page (sync(2)).
func syncDisks() { syscall.Sync() }

// peakRSS is the peak resident set of a finished child process, in MiB.
func peakRSS(ps *os.ProcessState) (float64, error) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, errors.New("no rusage on this system")
	}
	return float64(ru.Maxrss) / 1024, nil // Maxrss is in KiB on Linux
}
