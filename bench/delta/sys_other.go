//go:build !unix

package main

import (
	"errors"
	"os"
)

// syncDisks does nothing where sync(2) is missing.
func syncDisks() {}

// peakRSS is not available here: the benchmark measures memory on Unix
// only (it compares against Debian's tools).
func peakRSS(*os.ProcessState) (float64, error) {
	return 0, errors.New("peak memory of a child process is measured on Unix only")
}
