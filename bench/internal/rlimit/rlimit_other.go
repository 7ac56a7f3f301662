//go:build !unix

package rlimit

// RaiseFiles does nothing where there is no per-process open-file limit
// (RLIMIT_NOFILE) to raise, as on Windows, whose handle count is bounded
// by memory: the benchmarks build and run there without it.
func RaiseFiles(uint64) error { return nil }

// MaxFiles returns no limit where there is none (see RaiseFiles).
func MaxFiles() (uint64, error) { return 1 << 40, nil }
