package hub

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// Pauses between two attempts to listen for the store's signals: the
// poll goes on meanwhile, so a hub that cannot listen is slower, not
// wrong.
const (
	minListenPause = 500 * time.Millisecond
	maxListenPause = 30 * time.Second
)

// listen hears the store's signals of notifications created or released
// by other processes (and this one) until ctx is cancelled, and wakes
// Run for a poll on each that this hub has not handled yet, and each time
// listening (re)starts: signals sent meanwhile were missed. A store of
// one process (SQLite) has no signals: the hub then only polls, which
// is enough, Notify and Done waking Run themselves.
func (h *Hub) listen(ctx context.Context) {
	pause := minListenPause
	for {
		heard := false
		err := h.st.Listen(ctx, store.TopicNotifications, func(payload string) {
			heard = true
			if h.news(payload) {
				h.wake()
			}
		})
		if ctx.Err() != nil || errors.Is(err, errors.ErrUnsupported) {
			return
		}
		if heard {
			pause = minListenPause
		}
		h.log.Warn("listen for notifications of other server processes", "err", err, "retry_in", pause)
		// Full jitter, so that the processes of a site do not all come
		// back at once after a database restart.
		t := time.NewTimer(rand.N(pause) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, maxListenPause)
	}
}

// news reports whether a signal tells this hub something it does not
// know: a notification it does not follow, or the release of one it
// follows as still held. "" (listening started) always does.
func (h *Hub) news(payload string) bool {
	kind, id, ok := strings.Cut(payload, " ")
	if !ok {
		return true
	}
	h.tmu.Lock()
	defer h.tmu.Unlock()
	t := h.tracked[id]
	switch kind {
	case "created":
		return t == nil
	case "released":
		return t == nil || t.n.ClientsReleased.IsZero()
	}
	return true
}
