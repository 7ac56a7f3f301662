package hub

import (
	"context"
	"errors"

	"github.com/cascade-update/cascade/internal/store"
)

// pendingBatch is the most endpoints whose pending notifications one
// store read covers.
const pendingBatch = 1000

// pendingReq is a stream's request for its endpoint's pending
// notifications.
type pendingReq struct {
	ep   string
	ns   []store.Notification
	err  error
	done chan struct{}
}

// errHubStopping fails the reads of streams still waiting when the hub
// stops.
var errHubStopping = errors.New("notification hub stopping")

// pendingOf returns the endpoint's pending notifications
// (Store.PendingNotifications). The streams that open while a read is
// under way are read together in the next one (Store.PendingNotificationsOf):
// when many endpoints connect at once (every one after a server restart)
// the store answers a query per batch, not per stream, and a slow
// database makes the batches larger instead of the queue longer.
func (h *Hub) pendingOf(ctx context.Context, endpointID string) ([]store.Notification, error) {
	r := &pendingReq{ep: endpointID, done: make(chan struct{})}
	h.pmu.Lock()
	h.pwait = append(h.pwait, r)
	start := !h.preading
	h.preading = true
	h.pmu.Unlock()
	if start {
		go h.readPending() // ends when no stream waits
	}
	select {
	case <-r.done:
		return r.ns, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readPending answers the waiting streams' requests, a batch at a time,
// until none waits.
func (h *Hub) readPending() {
	for {
		h.pmu.Lock()
		batch := h.pwait[:min(len(h.pwait), pendingBatch)]
		h.pwait = h.pwait[len(batch):]
		if len(batch) == 0 {
			h.preading = false
			h.pwait = nil
			h.pmu.Unlock()
			return
		}
		h.pmu.Unlock()
		ids := make([]string, len(batch))
		for i, r := range batch {
			ids[i] = r.ep
		}
		var (
			got map[string][]store.Notification
			err error
		)
		if h.stopping() {
			err = errHubStopping
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), h.o.StoreTimeout)
			got, err = h.st.PendingNotificationsOf(ctx, ids)
			cancel()
		}
		for _, r := range batch {
			r.ns, r.err = got[r.ep], err
			close(r.done)
		}
	}
}

// stopping reports whether Run is not running (it stopped, or has not
// started).
func (h *Hub) stopping() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.running
}
