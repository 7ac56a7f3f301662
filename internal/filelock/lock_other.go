//go:build !unix

package filelock

import (
	"errors"
	"fmt"
	"os"
)

// Lock is a held lock: a lock file this process created exclusively.
type Lock struct{ name string }

func tryLock(name string) (*Lock, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w (the file exists; remove it if no cascade process runs)", ErrLocked)
	}
	if err != nil {
		return nil, err
	}
	f.Close()
	return &Lock{name: name}, nil
}

func (l *Lock) unlock() error { return os.Remove(l.name) }
