// Package filelock is an exclusive lock on a file, held by one process
// at a time: the install store's, a repository's while it is written,
// and a server's data directory. On Unix it is flock(2), released by the
// kernel when the process dies, so a crash leaves no stale lock; elsewhere
// the lock file is created exclusively and a crash leaves it behind, to be
// removed by hand (the error says so).
package filelock

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrLocked is wrapped by TryLock's error when another process (or
// another Lock in this process) holds the lock.
var ErrLocked = errors.New("locked")

// TryLock takes the lock on name, creating the file if needed, without
// waiting; the error wraps ErrLocked when it is held.
func TryLock(name string) (*Lock, error) {
	l, err := tryLock(name)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return l, nil
}

// Wait takes the lock on name, waiting until it is free or ctx is done
// (then the error wraps both ErrLocked and ctx's error).
func Wait(ctx context.Context, name string) (*Lock, error) {
	wait := 5 * time.Millisecond
	for {
		l, err := TryLock(name)
		if !errors.Is(err, ErrLocked) {
			return l, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: %w", err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if err := l.unlock(); err != nil {
		return fmt.Errorf("unlock %s: %w", l.name, err)
	}
	return nil
}
