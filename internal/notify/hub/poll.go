package hub

import (
	"context"
	"slices"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// poll reads the newest notifications from the store, offers to the
// connected streams those this hub has not sent yet (created or released
// by another process), releases the clients of those whose agents are
// done or whose agent timeout passed, and forgets what it no longer
// needs. It runs on Run's goroutine only.
func (h *Hub) poll(ctx context.Context) {
	h.beatRunning(ctx, false)
	ns, err := h.st.ListNotifications(ctx, pollWindow)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("poll notifications", "err", err)
		}
		return
	}
	for _, t := range h.merge(ns) {
		if ctx.Err() != nil {
			return
		}
		h.advance(ctx, t)
	}
	h.pruneRecent()
}

// merge makes the tracked set the notifications of ns plus the fresh
// ones created since, and returns them oldest first.
func (h *Hub) merge(ns []store.Notification) []*tracked {
	h.tmu.Lock()
	defer h.tmu.Unlock()
	keep := make(map[string]*tracked, len(ns))
	for _, n := range ns {
		t := h.tracked[n.ID]
		if t == nil {
			f, err := encode(n)
			if err != nil {
				h.log.Warn("skip notification", "notification", n.ID, "err", err)
				continue
			}
			// Not sent by this hub: offer what is pending to the streams.
			t = &tracked{n: n, frame: f}
		}
		if t.n.ClientsReleased.IsZero() {
			t.n.ClientsReleased = n.ClientsReleased // released by another process
		}
		t.fresh = false
		keep[n.ID] = t
	}
	for id, t := range h.tracked {
		if t.fresh && keep[id] == nil {
			keep[id] = t
		}
	}
	h.tracked = keep
	out := make([]*tracked, 0, len(keep))
	for _, t := range keep {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *tracked) int { return a.n.Created.Compare(b.n.Created) })
	return out
}

// advance moves one notification along: agents offered, clients
// released, clients offered.
func (h *Hub) advance(ctx context.Context, t *tracked) {
	if !t.agentsSent {
		role := store.RoleAgent
		if !t.n.AgentsFirst {
			role = ""
		}
		if err := h.dispatch(ctx, t, role); err != nil {
			h.log.Warn("send notification", "notification", t.n.ID, "err", err)
			return
		}
		t.agentsSent, t.clientsSent = true, !t.n.AgentsFirst
	}
	if t.n.ClientsReleased.IsZero() {
		why, cond, err := h.releaseReason(ctx, t.n)
		if err != nil {
			h.log.Warn("check notification progress", "notification", t.n.ID, "err", err)
			return
		}
		if why == "" {
			return
		}
		// The store releases only if the agents' deliveries still allow
		// it (an agent connected to another process may have got it
		// since they were counted), and only once: several processes may
		// decide at the same moment.
		n, released, err := h.st.ReleaseClientsIf(ctx, t.n.ID, cond)
		if err != nil {
			h.log.Warn("release clients", "notification", t.n.ID, "err", err)
			return
		}
		h.tmu.Lock()
		t.n = n
		h.tmu.Unlock()
		if n.ClientsReleased.IsZero() {
			return // an agent got it meanwhile: wait for its report
		}
		if released {
			h.log.Info("notification released to clients", "notification", n.ID, "why", why)
		}
	}
	if !t.clientsSent {
		if err := h.dispatch(ctx, t, store.RoleClient); err != nil {
			h.log.Warn("send notification", "notification", t.n.ID, "err", err)
			return
		}
		t.clientsSent = true
	}
}

// releaseReason says why the clients of n may be notified now, or ""
// while they wait, and the condition on the agents' deliveries under
// which the store is to release them. They may when every notified agent
// reported (no agent delivery is delivered and unfinished) and none is
// still to be notified; or when some are (offline) but a poll interval
// has passed, so that every server process has offered it to the agents
// connected to it, and either the reconnect grace has passed since this
// hub started and since another hub last stopped or went silent (agents
// still reconnecting are not offline), or every offline agent went while
// this hub ran (it is not reconnecting); or when the agent timeout
// passed.
func (h *Hub) releaseReason(ctx context.Context, n store.Notification) (string, store.ReleaseCondition, error) {
	age := h.o.Now().Sub(n.Created)
	if age >= h.o.AgentTimeout {
		return "agent timeout", store.ReleaseAlways, nil
	}
	counts, err := h.st.DeliveryCounts(ctx, n.ID)
	if err != nil {
		return "", 0, err
	}
	agents := counts[store.RoleAgent]
	switch {
	case agents[store.DeliveryDelivered] > 0:
		return "", 0, nil
	case agents[store.DeliveryPending] == 0:
		return "agents done", store.ReleaseAgentsFinished, nil
	case age < h.o.PollInterval:
		return "", 0, nil
	case !h.beatRunning(ctx, true): // whether another hub stopped just now
		return "", 0, nil
	case h.o.Now().Sub(h.reconnecting()) >= h.o.ReconnectGrace:
		return "connected agents done, others offline", store.ReleaseNoAgentRunning, nil
	}
	gone, err := h.allLeft(ctx, n.ID)
	if err != nil || !gone {
		return "", 0, err
	}
	return "connected agents done, others went offline while the server ran", store.ReleaseNoAgentRunning, nil
}

// allLeft reports whether every agent still to be notified of id went
// offline while this hub ran (Options.ReconnectGrace).
func (h *Hub) allLeft(ctx context.Context, id string) (bool, error) {
	h.mu.Lock()
	none := len(h.left) == 0
	h.mu.Unlock()
	if none {
		return false, nil
	}
	eps, err := h.st.PendingEndpoints(ctx, id, store.RoleAgent)
	if err != nil {
		return false, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ep := range eps {
		if !h.left[ep] {
			return false, nil
		}
	}
	return true, nil
}

// silentPolls is how many poll intervals a hub that does not record
// that it runs (Store.BeatHub) takes to count as gone.
const silentPolls = 3

// beatRunning records, at most every half poll interval unless now,
// that this hub runs, and learns when another last stopped or went
// silent. It reports whether it did.
func (h *Hub) beatRunning(ctx context.Context, now bool) bool {
	t := h.o.Now()
	if !now && !h.beat.IsZero() && t.Sub(h.beat) < h.o.PollInterval/2 {
		return true
	}
	gone, err := h.st.BeatHub(ctx, h.id, false, silentPolls*h.o.PollInterval)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("record notification hub", "err", err)
		}
		return false
	}
	h.beat, h.peersGone = t, gone
	return true
}

// beatStopped records that this hub stopped: the other hubs give its
// agents the reconnect grace. ctx is Run's, cancelled.
func (h *Hub) beatStopped(ctx context.Context) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.o.StoreTimeout)
	defer cancel()
	if _, err := h.st.BeatHub(sctx, h.id, true, silentPolls*h.o.PollInterval); err != nil {
		h.log.Warn("record notification hub stopped", "err", err)
	}
}

// reconnecting returns since when endpoints may be reconnecting to this
// hub: it started, or another hub stopped or went silent.
func (h *Hub) reconnecting() time.Time {
	if h.peersGone.After(h.started) {
		return h.peersGone
	}
	return h.started
}

// frameOf returns the encoded event of n, shared with the tracked
// notification when there is one.
func (h *Hub) frameOf(n store.Notification) (*frame, error) {
	h.tmu.Lock()
	t := h.tracked[n.ID]
	h.tmu.Unlock()
	if t != nil {
		return t.frame, nil
	}
	return encode(n)
}

// pruneRecent forgets the streams closed more than ResendWindow ago.
func (h *Hub) pruneRecent() {
	cutoff := h.o.Now().Add(-h.o.ResendWindow)
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, rec := range h.recent {
		if rec.closed.Before(cutoff) {
			delete(h.recent, id)
		}
	}
}
