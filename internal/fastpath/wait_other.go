//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package fastpath

import (
	"errors"
	"net"
)

// canWaitUnbuffered reports whether waitReadable works on c: not on this
// system, where connections keep their read buffer while they wait.
func canWaitUnbuffered(net.Conn) bool { return false }

func waitReadable(net.Conn) error { return errors.ErrUnsupported }
