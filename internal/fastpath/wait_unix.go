//go:build linux || darwin || freebsd || netbsd || openbsd

package fastpath

import (
	"net"
	"syscall"
)

// canWaitUnbuffered reports whether waitReadable works on c.
func canWaitUnbuffered(c net.Conn) bool {
	_, ok := c.(syscall.Conn)
	return ok
}

// waitReadable waits, without a buffer, until c has bytes to read, has
// reached its end or failed, or its read deadline passes (the error). It
// peeks at the socket rather than trusting the poller's readiness alone:
// bytes may have arrived before the wait began.
func waitReadable(c net.Conn) error {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var one [1]byte
	return rc.Read(func(fd uintptr) bool {
		for {
			_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err != syscall.EINTR {
				return err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
			}
		}
	})
}
