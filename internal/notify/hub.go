// Package notify is the server's update notifications (DESIGN.md section
// 4, trigger notify-components; seed: the server "notifies the agent to
// update components") and the endpoint side that listens for them.
//
// Endpoints hold an authenticated Server-Sent Events stream to the server
// (Hub.Handler; the server's middleware authenticates and puts the
// endpoint in the request context with WithEndpoint). Hub.Notify records
// a notification for every targeted endpoint, agents first: update agents
// get it at once; clients are released when every notified agent has
// reported it done, or after Options.AgentTimeout. An endpoint offline at
// the time gets its pending notifications when it reconnects. Deliveries
// are tracked in the server's store (pending, delivered, done or failed).
//
// The stream (docs/notifications.md):
//
//	: connected
//
//	id: <notification id>
//	event: notify-components
//	data: {"id":"...","versions":{"pattern":"17.736.00"},"created":"..."}
//
// with a comment line every Heartbeat so proxies keep it open. Listen is
// the client: it keeps a stream open, reconnecting with capped exponential
// backoff and full jitter, and calls OnEvent for each notification.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// EventName is the SSE event type of a notification.
const EventName = "notify-components"

// Event is one notification as an endpoint receives it.
type Event struct {
	// ID identifies the notification; the endpoint puts it in the report
	// of the run it triggered, and the server marks the delivery done.
	ID string `json:"id"`
	// Versions are the announced component versions: a source holding an
	// older version of any of them is stale for the triggered run.
	Versions map[string]string `json:"versions"`
	Created  time.Time         `json:"created"`
}

// Announcement is what the server announces.
type Announcement struct {
	Versions map[string]string
	// Domain limits the notification to one domain ("" for all).
	Domain string
}

// Endpoint is the authenticated endpoint of a stream.
type Endpoint struct {
	ID     string
	Role   store.Role
	Domain string
}

type ctxKey struct{}

// WithEndpoint returns ctx carrying the authenticated endpoint, as the
// server's middleware must before calling the Hub's handler.
func WithEndpoint(ctx context.Context, e Endpoint) context.Context {
	return context.WithValue(ctx, ctxKey{}, e)
}

func endpointFrom(ctx context.Context) (Endpoint, bool) {
	e, ok := ctx.Value(ctxKey{}).(Endpoint)
	return e, ok && e.ID != ""
}

// Options configure a Hub. Store and Now are required.
type Options struct {
	Store store.Store
	// AgentTimeout is how long clients wait for the agents of a
	// notification before they are notified anyway (default 2m).
	AgentTimeout time.Duration
	// Heartbeat is the interval of keep-alive comments (default 25s).
	Heartbeat time.Duration
	// WriteTimeout bounds writing one event to a stream (default 10s); a
	// stream that cannot take it is closed and the endpoint reconnects.
	WriteTimeout time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Hub fans notifications out to the endpoints' streams.
type Hub struct {
	o   Options
	log *slog.Logger

	mu    sync.Mutex
	conns map[string]*conn // by endpoint id
	held  map[string]time.Time
	// held: notifications whose clients are not released yet, with the
	// time they are released at the latest.
}

// conn is one endpoint's open stream.
type conn struct {
	ep     Endpoint
	events chan store.Notification
	done   chan struct{} // closed when the stream is replaced or dropped
	once   sync.Once
}

func (c *conn) close() { c.once.Do(func() { close(c.done) }) }

// NewHub returns a Hub. Run must be running for client releases after
// the agent timeout.
func NewHub(o Options) (*Hub, error) {
	if o.Store == nil || o.Now == nil {
		return nil, errors.New("notify hub: Store and Now are required")
	}
	if o.AgentTimeout <= 0 {
		o.AgentTimeout = 2 * time.Minute
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 25 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{o: o, log: log, conns: map[string]*conn{}, held: map[string]time.Time{}}, nil
}

// Connected reports whether the endpoint holds a stream.
func (h *Hub) Connected(endpointID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.conns[endpointID]
	return ok
}

// ConnectedCount is the number of endpoints holding a stream.
func (h *Hub) ConnectedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Disconnect closes the endpoint's stream (after its credential was
// revoked, for example).
func (h *Hub) Disconnect(endpointID string) {
	h.mu.Lock()
	c := h.conns[endpointID]
	delete(h.conns, endpointID)
	h.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// Notify records a notification for every non-revoked endpoint of the
// announcement's domain (all domains when empty), agents first, sends it
// to the connected agents, and returns its id.
func (h *Hub) Notify(ctx context.Context, a Announcement) (string, error) {
	versions, err := json.Marshal(a.Versions)
	if err != nil || len(a.Versions) == 0 {
		return "", fmt.Errorf("notify: announce at least one component version")
	}
	eps, err := h.o.Store.ListEndpoints(ctx, store.EndpointFilter{Domain: a.Domain})
	if err != nil {
		return "", fmt.Errorf("notify: list endpoints: %w", err)
	}
	ids := make([]string, 0, len(eps))
	agents := 0
	for _, e := range eps {
		ids = append(ids, e.ID)
		if e.Role == store.RoleAgent {
			agents++
		}
	}
	n, err := h.o.Store.CreateNotification(ctx, store.Notification{Versions: versions, Domain: a.Domain, AgentsFirst: true}, ids)
	if err != nil {
		return "", fmt.Errorf("notify: %w", err)
	}
	h.log.Info("notification", "id", n.ID, "endpoints", len(ids), "agents", agents, "versions", string(versions))
	if agents == 0 {
		return n.ID, h.release(ctx, n.ID)
	}
	h.mu.Lock()
	h.held[n.ID] = n.Created.Add(h.o.AgentTimeout)
	h.mu.Unlock()
	return n.ID, h.push(ctx, n, store.RoleAgent)
}

// Done records that an endpoint's run for a notification ended (ok: it
// updated). When the last notified agent is done, the clients are
// released.
func (h *Hub) Done(ctx context.Context, endpointID, notificationID string, ok bool) error {
	state, detail := store.DeliveryDone, ""
	if !ok {
		state, detail = store.DeliveryFailed, "the triggered update run failed"
	}
	err := h.o.Store.SetDeliveryState(ctx, notificationID, endpointID, state, detail)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("notify: record %s of %s: %w", state, endpointID, err)
	}
	h.mu.Lock()
	_, held := h.held[notificationID]
	h.mu.Unlock()
	if !held {
		return nil
	}
	counts, err := h.o.Store.DeliveryCounts(ctx, notificationID)
	if err != nil {
		return fmt.Errorf("notify: progress of %s: %w", notificationID, err)
	}
	if a := counts[store.RoleAgent]; a[store.DeliveryPending]+a[store.DeliveryDelivered] == 0 {
		return h.release(ctx, notificationID)
	}
	return nil
}

// release lets a notification's clients be notified and sends it to the
// connected ones.
func (h *Hub) release(ctx context.Context, id string) error {
	h.mu.Lock()
	delete(h.held, id)
	h.mu.Unlock()
	n, err := h.o.Store.ReleaseClients(ctx, id)
	if err != nil {
		return fmt.Errorf("notify: release clients of %s: %w", id, err)
	}
	h.log.Info("notification released to clients", "id", id)
	return h.push(ctx, n, store.RoleClient)
}

// push queues n on the streams of the connected endpoints of role whose
// delivery is pending.
func (h *Hub) push(ctx context.Context, n store.Notification, role store.Role) error {
	pending, err := h.o.Store.Deliveries(ctx, n.ID, store.DeliveryFilter{Role: role, State: store.DeliveryPending})
	if err != nil {
		return fmt.Errorf("notify: deliveries of %s: %w", n.ID, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range pending {
		if c := h.conns[d.EndpointID]; c != nil {
			select {
			case c.events <- n:
			default:
				// A stream that cannot keep up is dropped; the endpoint
				// reconnects and gets what is pending.
				delete(h.conns, d.EndpointID)
				c.close()
			}
		}
	}
	return nil
}

// Run releases held notifications whose agents did not all report in
// time, until ctx is cancelled. On start it picks up notifications held
// by an earlier process.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.recoverHeld(ctx); err != nil {
		h.log.Warn("notify: recover held notifications", "error", err)
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			h.releaseExpired(ctx)
		}
	}
}

func (h *Hub) recoverHeld(ctx context.Context) error {
	ns, err := h.o.Store.ListNotifications(ctx, 100)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range ns {
		if n.AgentsFirst && n.ClientsReleased.IsZero() {
			h.held[n.ID] = n.Created.Add(h.o.AgentTimeout)
		}
	}
	return nil
}

func (h *Hub) releaseExpired(ctx context.Context) {
	now := h.o.Now()
	h.mu.Lock()
	var due []string
	for id, at := range h.held {
		if !now.Before(at) {
			due = append(due, id)
		}
	}
	h.mu.Unlock()
	for _, id := range due {
		h.log.Info("agents did not all report in time; releasing clients", "id", id)
		if err := h.release(ctx, id); err != nil {
			h.log.Warn("release clients", "id", id, "error", err)
		}
	}
}
