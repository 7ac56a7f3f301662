package failover

import (
	"sync"
	"time"
)

// Health remembers sources that failed at connection level, so that they
// are not contacted again: for the rest of an update run (docs/update-process.md,
// Running a plan: "A source that failed at connection level is not contacted again in
// the same run") and, across runs, for a short time ("cache a failed
// source's state for a short time"). It is safe for concurrent use.
type Health struct {
	now func() time.Time
	ttl time.Duration

	mu     sync.Mutex
	failed map[string]entry
}

type entry struct {
	err   error
	until time.Time
}

// NewHealth returns a cache that remembers a failure for ttl, using now as
// its clock.
func NewHealth(now func() time.Time, ttl time.Duration) *Health {
	return &Health{now: now, ttl: ttl, failed: map[string]entry{}}
}

// Failed returns the remembered failure of source key, or nil.
func (h *Health) Failed(key string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.failed[key]
	if !ok {
		return nil
	}
	if !h.now().Before(e.until) {
		delete(h.failed, key)
		return nil
	}
	return e.err
}

// Fail records a connection-level failure of source key.
func (h *Health) Fail(key string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed[key] = entry{err: err, until: h.now().Add(h.ttl)}
}

// Forget clears what is remembered of key, for example after the source
// served an update.
func (h *Health) Forget(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.failed, key)
}
