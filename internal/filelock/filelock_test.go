package filelock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestTryLock(t *testing.T) {
	name := filepath.Join(t.TempDir(), "lock")
	l, err := TryLock(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(name); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v, want ErrLocked", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l, err = TryLock(name)
	if err != nil {
		t.Fatalf("after Unlock: %v", err)
	}
	l.Unlock()
}

func TestWait(t *testing.T) {
	name := filepath.Join(t.TempDir(), "lock")
	l, err := TryLock(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Wait(ctx, name); !errors.Is(err, ErrLocked) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a held lock with a cancelled context: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		l2, err := Wait(context.Background(), name)
		if err == nil {
			err = l2.Unlock()
		}
		got <- err
	}()
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not take the released lock")
	}
}
