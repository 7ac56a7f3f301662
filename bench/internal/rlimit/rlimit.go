//go:build unix

// Package rlimit raises the open-file limit of the benchmark programs,
// which hold thousands of connections in one process.
package rlimit

import "syscall"

// RaiseFiles raises RLIMIT_NOFILE to at least n: the soft limit up to the
// hard one, the hard one too when that is lower (which needs privileges).
func RaiseFiles(n uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= n {
		return nil
	}
	l.Cur, l.Max = n, max(l.Max, n)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

// MaxFiles returns the hard RLIMIT_NOFILE: the most open files a process
// may have without privileges.
func MaxFiles() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	return l.Max, nil
}
