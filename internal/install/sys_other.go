//go:build !unix

package install

import (
	"errors"
	"fmt"
	"os"
)

// dirLock is held by creating the lock file exclusively. Unlike flock on
// Unix, a crashed process leaves the file behind; it must then be removed
// by hand, which the error says.
type dirLock struct{ name string }

// lock creates name exclusively; ErrInUse if it exists.
func lock(name string) (*dirLock, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w: %s exists (remove it if no cascade process runs)", ErrInUse, name)
	}
	if err != nil {
		return nil, err
	}
	f.Close()
	return &dirLock{name: name}, nil
}

// unlock releases the lock.
func (l *dirLock) unlock() error { return os.Remove(l.name) }
