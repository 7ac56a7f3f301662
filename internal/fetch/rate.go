package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Clock is the time source of the minimum-rate watchdog. Tests inject a
// fake; production code uses the wall clock (the zero Options value).
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker that delivers the current time every d.
	NewTicker(d time.Duration) Ticker
}

// Ticker is the part of *time.Ticker the watchdog uses.
type Ticker interface {
	// C returns the channel on which ticks are delivered.
	C() <-chan time.Time
	// Stop turns the ticker off; no tick is delivered after it returns.
	Stop()
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) NewTicker(d time.Duration) Ticker { return wallTicker{time.NewTicker(d)} }

type wallTicker struct{ t *time.Ticker }

func (w wallTicker) C() <-chan time.Time { return w.t.C }
func (w wallTicker) Stop()               { w.t.Stop() }

// errTooSlow is the cancellation cause set by the watchdog.
var errTooSlow = errors.New("transfer below the minimum rate")

// rateMeter decides whether a transfer is below a minimum rate over a
// sliding window. It is fed (time, total bytes) samples in time order and
// is pure, so its arithmetic is tested without any clock.
type rateMeter struct {
	min     int64 // bytes per second
	window  time.Duration
	samples []sample // oldest first; samples[0] is the baseline
}

type sample struct {
	t time.Time
	n int64
}

func newRateMeter(min int64, window time.Duration, start time.Time) *rateMeter {
	return &rateMeter{min: min, window: window, samples: []sample{{start, 0}}}
}

// observe records that n bytes in total had arrived at now. It returns a
// non-nil error describing the shortfall when the rate over the last full
// window is below the minimum. Before a full window has elapsed since the
// start it never complains (the grace period).
func (m *rateMeter) observe(now time.Time, n int64) error {
	m.samples = append(m.samples, sample{now, n})
	cut := now.Add(-m.window)
	// Keep as baseline the newest sample at or before now-window.
	i := 0
	for i+1 < len(m.samples) && !m.samples[i+1].t.After(cut) {
		i++
	}
	m.samples = m.samples[i:]
	base := m.samples[0]
	if base.t.After(cut) {
		return nil // less than one window of history
	}
	elapsed := now.Sub(base.t)
	got := n - base.n
	if float64(got) < float64(m.min)*elapsed.Seconds() {
		return fmt.Errorf("%w: %d bytes in %s, minimum %d B/s", errTooSlow,
			got, elapsed.Round(time.Millisecond), m.min)
	}
	return nil
}

// watchdog cancels a transfer (through cancel, with an errTooSlow cause)
// when the bytes counted by its reader fall below the minimum rate. Its
// goroutine is owned by whoever calls start and ends in stop.
type watchdog struct {
	clock  Clock
	min    int64
	window time.Duration
	cancel context.CancelCauseFunc
	n      atomic.Int64
	quit   chan struct{}
	done   chan struct{}
}

// startWatchdog starts watching; min <= 0 disables it (stop still works).
func startWatchdog(clock Clock, min int64, window time.Duration, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{clock: clock, min: min, window: window, cancel: cancel,
		quit: make(chan struct{}), done: make(chan struct{})}
	if min <= 0 || window <= 0 {
		close(w.done)
		return w
	}
	go w.run()
	return w
}

func (w *watchdog) run() {
	defer close(w.done)
	m := newRateMeter(w.min, w.window, w.clock.Now())
	t := w.clock.NewTicker(w.window / 4)
	defer t.Stop()
	for {
		select {
		case <-w.quit:
			return
		case now := <-t.C():
			if err := m.observe(now, w.n.Load()); err != nil {
				w.cancel(err)
				return
			}
		}
	}
}

// stop ends the watchdog and waits for its goroutine. Idempotent only in
// the sense that callers call it exactly once, from a defer.
func (w *watchdog) stop() {
	close(w.quit)
	<-w.done
}

// reader wraps r so that every byte read counts towards the rate.
func (w *watchdog) reader(r io.Reader) io.Reader { return &countingReader{r: r, n: &w.n} }

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}
