//go:build unix

package install

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// dirLock is an exclusive flock(2) lock. The kernel releases it when the
// process dies, so a crashed endpoint leaves no stale lock.
type dirLock struct{ f *os.File }

// lock takes the lock on name without waiting; ErrInUse if another
// process (or another Store in this process) holds it.
func lock(name string) (*dirLock, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked", ErrInUse, name)
		}
		return nil, err
	}
	return &dirLock{f: f}, nil
}

// unlock releases the lock.
func (l *dirLock) unlock() error { return l.f.Close() }
