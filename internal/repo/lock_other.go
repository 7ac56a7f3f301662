//go:build !unix

package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// fileLock is a lock held by creating the lock file exclusively. Unlike
// the flock lock on Unix, a crashed publisher leaves the file behind; it
// must then be removed by hand, which the error message says.
type fileLock struct{ name string }

// lockFile creates name exclusively, waiting until it can or ctx is done.
func lockFile(ctx context.Context, name string) (*fileLock, error) {
	wait := 5 * time.Millisecond
	for {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return &fileLock{name: name}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("lock %s: held by another publisher (remove it if none runs): %w", name, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// unlock releases the lock.
func (l *fileLock) unlock() error {
	if err := os.Remove(l.name); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}
