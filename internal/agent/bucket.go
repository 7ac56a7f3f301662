package agent

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket shared by every response of an agent: it paces
// the total upload to rate bytes per second, allowing bursts of up to
// burst bytes. It is the generic cell rate algorithm: tat is the time at
// which everything reserved so far has been sent at the nominal rate.
type bucket struct {
	nsPer float64       // nanoseconds per byte
	burst time.Duration // the time worth of the burst

	mu  sync.Mutex
	tat time.Time
}

// minBurst is the smallest burst: one paced write must always fit.
const minBurst = 64 << 10

func newBucket(rate int64) *bucket {
	nsPer := float64(time.Second) / float64(rate)
	burst := max(rate/10, minBurst)
	return &bucket{nsPer: nsPer, burst: time.Duration(float64(burst) * nsPer)}
}

// reserve books n bytes at now and returns how long the caller must wait
// before sending them.
func (b *bucket) reserve(now time.Time, n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tat.Before(now) {
		b.tat = now
	}
	b.tat = b.tat.Add(time.Duration(float64(n) * b.nsPer))
	return max(b.tat.Sub(now)-b.burst, 0)
}

// wait blocks until n bytes may be sent, or ctx is done.
func (b *bucket) wait(ctx context.Context, n int) error {
	d := b.reserve(time.Now(), n)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
