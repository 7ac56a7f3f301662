package fetch

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestRateMeter(t *testing.T) {
	start := time.Unix(0, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	type obs struct {
		ms   int
		n    int64
		slow bool
	}
	tests := []struct {
		name string
		obs  []obs
	}{
		{"grace period: nothing before a full window", []obs{{250, 0, false}, {500, 0, false}, {750, 0, false}}},
		{"stalled from the start", []obs{{250, 0, false}, {500, 0, false}, {750, 0, false}, {1000, 0, true}}},
		{"exactly the minimum", []obs{{500, 50, false}, {1000, 100, false}, {1500, 150, false}, {2000, 200, false}}},
		{"just below the minimum", []obs{{500, 50, false}, {1000, 99, true}}},
		{"fast then stalled: the window slides", []obs{
			{250, 10_000, false}, {500, 10_000, false}, {1000, 10_000, false},
			{1250, 10_000, true}}},
		{"bursty but enough in every window", []obs{
			{250, 100, false}, {500, 100, false}, {750, 100, false}, {1000, 200, false},
			{1250, 200, false}, {1500, 200, false}, {1750, 300, false}, {2000, 300, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newRateMeter(100, time.Second, start) // 100 B/s over 1 s
			for _, o := range tc.obs {
				err := m.observe(at(o.ms), o.n)
				if (err != nil) != o.slow {
					t.Fatalf("at %dms with %d bytes: got %v, want slow=%v", o.ms, o.n, err, o.slow)
				}
				if err != nil && !errors.Is(err, errTooSlow) {
					t.Fatalf("error %v is not errTooSlow", err)
				}
			}
		})
	}
}

// The watchdog tests run in a testing/synctest bubble with the real
// clock (wallClock): its ticker and the test's sleeps pass on the
// bubble's clock, so the windows are exact and nothing waits on real
// time.

func TestWatchdogCancelsStalledTransfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		w := startWatchdog(wallClock{}, 100, time.Second, cancel)
		defer w.stop()
		time.Sleep(2 * time.Second) // two windows without a byte
		synctest.Wait()
		if !errors.Is(context.Cause(ctx), errTooSlow) {
			t.Fatalf("cause %v, want errTooSlow", context.Cause(ctx))
		}
	})
}

func TestWatchdogLeavesSteadyTransfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		w := startWatchdog(wallClock{}, 100, time.Second, cancel)
		// Ten windows at 50 bytes per quarter second, twice the minimum.
		// Not exactly the minimum (TestRateMeter covers that boundary):
		// the test's sleep and the watchdog's tick end at the same
		// instant, so a sample may already include the next quarter's
		// bytes, and a window can then look one quarter short (150 bytes
		// here, still above 100).
		for range 40 {
			w.n.Add(50)
			time.Sleep(250 * time.Millisecond)
		}
		synctest.Wait() // the last tick is processed
		w.stop()
		if err := context.Cause(ctx); err != nil {
			t.Fatalf("steady transfer cancelled: %v", err)
		}
	})
}

func TestWatchdogDisabled(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	w := startWatchdog(wallClock{}, -1, time.Second, cancel)
	w.stop()
	if ctx.Err() != nil {
		t.Fatal("disabled watchdog cancelled")
	}
}
