// Package hub is the server side of update notifications
// (docs/notifications.md, trigger notify-components: the server notifies
// the agents, then the clients, to update components).
//
// Endpoints hold an authenticated Server-Sent Events stream to a Hub
// (Hub.Handler; the server's middleware authenticates and puts the
// endpoint in the request context with WithEndpoint). Hub.Notify records
// a notification in the store with a delivery for every targeted
// endpoint, agents first: update agents get it at once; clients are
// released when every notified agent has reported it (Hub.Done), or
// Options.AgentTimeout after it was created, whichever comes first.
// Deliveries that could not be sent (endpoint offline, clients held back)
// stay pending in the store and are sent when the endpoint connects.
// Several server processes sharing a PostgreSQL database each run a Hub:
// each hears from the store (Store.Listen, PostgreSQL's LISTEN/NOTIFY)
// when another creates a notification or releases its clients, and polls
// the store as a backstop; it then sends what is pending to the
// endpoints connected to it. Whichever hub sees the agents done (from the
// store, wherever they are connected) releases the clients, with one
// conditional write: one hub releases them.
//
// The events' format is package notify's; the endpoint's side is package
// notify/listen.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/notify"
	"github.com/cascade-update/cascade/internal/store"
)

// Store is what the Hub needs of the server's database; store.Store
// implements it.
type Store interface {
	CreateNotification(ctx context.Context, n store.Notification, endpointIDs []string) (store.Notification, error)
	CreateDomainNotification(ctx context.Context, n store.Notification) (store.Notification, int, error)
	ListNotifications(ctx context.Context, limit int) ([]store.Notification, error)
	ReleaseClientsIf(ctx context.Context, id string, cond store.ReleaseCondition) (store.Notification, bool, error)
	PendingNotificationsOf(ctx context.Context, endpointIDs []string) (map[string][]store.Notification, error)
	DeliveredAfter(ctx context.Context, endpointID, after string, limit int) ([]store.Notification, error)
	SetDeliveryState(ctx context.Context, id, endpointID string, state store.DeliveryState, detail string) error
	MarkDelivered(ctx context.Context, id string, endpointIDs []string) (int64, error)
	PendingEndpoints(ctx context.Context, id string, role store.Role) ([]string, error)
	DeliveryCounts(ctx context.Context, id string) (map[store.Role]map[store.DeliveryState]int, error)
	// Listen hears the store's signals of notifications created or
	// released by any process (store.TopicNotifications); a store of
	// one process (SQLite) returns errors.ErrUnsupported.
	Listen(ctx context.Context, topic string, fn func(payload string)) error
	BeatHub(ctx context.Context, id string, stopped bool, silence time.Duration) (time.Time, error)
	Endpoint(ctx context.Context, id string) (store.Endpoint, error)
}

// Options configure a Hub. Only Store is required.
type Options struct {
	Store  Store
	Logger *slog.Logger // default: discard
	// Now is the clock deciding the client timeout (default time.Now);
	// give it the store's clock.
	Now func() time.Time
	// AgentTimeout is how long clients wait at most for the update
	// agents: a notification's client deliveries are released when every
	// notified agent has reported it done or failed, or this long after
	// the notification was created, whichever comes first. Default 5m.
	AgentTimeout time.Duration
	// PollInterval is how often the hub reads the store for
	// notifications created or released by other server processes,
	// agent reports recorded without Done, and expired client timeouts.
	// It is also the least time clients wait when some targeted agents
	// are offline (so that every process has had a poll to send the
	// notification to the agents connected to it). Default 2s.
	PollInterval time.Duration
	// ReconnectGrace is how long after the hub starts a targeted agent
	// that has no recorded delivery counts as reconnecting rather than
	// offline, so it still holds the clients: after a server restart
	// every endpoint reconnects with backoff (the listener's full jitter), and
	// an event written just before a crash may have gone out without its
	// record. The same holds after another hub on the store (another
	// server process) stopped, or went silent for three poll intervals:
	// its endpoints are reconnecting to the others (Store.BeatHub). An
	// agent whose stream to this hub closed while the hub was
	// running is not reconnecting after a restart: it gets no grace and
	// holds the clients for a poll interval only, like any offline agent.
	// Default 30s; the agent timeout still applies.
	ReconnectGrace time.Duration
	// Heartbeat is the interval of the comment lines written on an idle
	// stream so that proxies and NATs keep it open and the endpoint can
	// tell a dead stream from a quiet one. Default 25s; the listener's default
	// Idle (90s) allows for three lost heartbeats.
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a stream (default 10s); a stream
	// whose endpoint does not read is closed.
	WriteTimeout time.Duration
	// StoreTimeout bounds each store call a stream makes (default 10s).
	StoreTimeout time.Duration
	// ResendWindow is how long the events written on a closed stream are
	// remembered, so that a stream resumed with Last-Event-ID gets again
	// those written after that id (they may have been lost with the
	// connection). Default 10m.
	ResendWindow time.Duration
	// QueueSize bounds the events waiting to be written to one stream
	// (default 64). A stream that falls further behind is closed; its
	// unsent deliveries stay pending and are sent when it reconnects.
	QueueSize int
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.AgentTimeout, 5*time.Minute)
	def(&o.PollInterval, 2*time.Second)
	def(&o.ReconnectGrace, 30*time.Second)
	def(&o.Heartbeat, 25*time.Second)
	def(&o.WriteTimeout, 10*time.Second)
	def(&o.StoreTimeout, 10*time.Second)
	def(&o.ResendWindow, 10*time.Minute)
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
}

// pollWindow is how many of the newest notifications each poll reads.
// A notification still holding its clients back when more than this many
// newer ones exist is no longer released by the hub.
const pollWindow = 256

// Hub is the server side: it serves the endpoints' event streams
// (ServeHTTP), records and sends notifications (Notify) and releases
// them to clients (Run). Its methods are safe for concurrent use.
type Hub struct {
	o   Options
	st  Store
	log *slog.Logger

	mu      sync.Mutex
	running bool
	conns   map[string]*conn      // by endpoint id: the endpoint's one stream
	recent  map[string]sentRecord // by endpoint id: events written on its last closed stream
	left    map[string]bool       // by endpoint id: agents whose stream closed while Run ran, not back since

	kick chan struct{} // wakes Run for a poll (capacity 1)

	markMu      sync.Mutex
	marks       map[string][]string // by notification id: agents it was written to, not yet recorded
	clientMarks map[string][]string // the same for the other endpoints (clientRecordQuiet)
	clientFirst time.Time           // when the oldest of clientMarks was queued
	clientLast  time.Time           // when the newest was
	markKick    chan struct{}       // wakes the recorder (capacity 1)

	tmu     sync.Mutex
	tracked map[string]*tracked // the notifications of the last poll, and newer ones

	pmu      sync.Mutex
	pwait    []*pendingReq // streams waiting for their pending notifications (pendingOf)
	preading bool          // readPending runs

	id        string    // this hub among those sharing the store (Store.BeatHub)
	started   time.Time // when Run started (the clock's), for ReconnectGrace
	beat      time.Time // when Run last recorded that the hub runs
	peersGone time.Time // when another hub last stopped or went silent, for ReconnectGrace
}

// sentRecord is what a closed stream wrote, kept for resumption.
type sentRecord struct {
	log    []*frame
	closed time.Time
}

// tracked is a notification the hub follows until it drops out of the
// poll window. Only Run's goroutine changes it once it is in the map.
type tracked struct {
	n           store.Notification
	frame       *frame
	agentsSent  bool // the agent deliveries were offered to the connected streams
	clientsSent bool // the client deliveries were
	fresh       bool // created by this hub's Notify and not yet seen by a poll
}

// New returns a Hub. Run must be running for streams to be served
// and clients to be released.
func New(o Options) (*Hub, error) {
	if o.Store == nil {
		return nil, errors.New("new notification hub: no store")
	}
	o.defaults()
	b := make([]byte, 8)
	rand.Read(b)
	return &Hub{o: o, st: o.Store, log: o.Logger, id: "hub_" + hex.EncodeToString(b), conns: map[string]*conn{}, recent: map[string]sentRecord{}, left: map[string]bool{},
		kick: make(chan struct{}, 1), tracked: map[string]*tracked{}, marks: map[string][]string{},
		clientMarks: map[string][]string{}, markKick: make(chan struct{}, 1)}, nil
}

// Run releases clients and sends notifications created or released
// elsewhere until ctx is cancelled; then it closes every stream and
// returns nil. Store errors are logged and retried at the next poll.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errors.New("run notification hub: already running")
	}
	h.running = true
	h.mu.Unlock()
	h.started = h.o.Now()
	recorded, listened := make(chan struct{}), make(chan struct{})
	go func() { // owned by Run, which waits for it
		defer close(recorded)
		h.recordDeliveries(ctx)
	}()
	go func() { // owned by Run, which waits for it
		defer close(listened)
		h.listen(ctx)
	}()
	defer func() {
		h.stop()
		<-recorded
		<-listened
		h.beatStopped(ctx)
	}()

	t := time.NewTicker(h.o.PollInterval)
	defer t.Stop()
	for {
		h.poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-h.kick:
		}
	}
}

// stop closes every stream and refuses new ones.
func (h *Hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running = false
	for _, c := range h.conns {
		c.close()
	}
}

// wake asks Run for a poll.
func (h *Hub) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Notify records a notification of a for every endpoint of a.Domain
// (every domain when "") that is not revoked, sends it at once to the
// connected update agents (to every connected endpoint when no agent is
// targeted), and returns its id. Clients get it once released (see
// Options.AgentTimeout); offline endpoints when they connect. Invalid
// versions (an empty name or version) wrap store.ErrInvalid; versions
// larger than an event may carry wrap notify.ErrTooLarge.
func (h *Hub) Notify(ctx context.Context, a Announcement) (string, error) {
	n, err := h.create(ctx, a)
	return n.ID, err
}

// NotifyAll is Notify returning the stored notification (the server's
// Notifier interface).
func (h *Hub) NotifyAll(ctx context.Context, versions map[string]string, domain string) (store.Notification, error) {
	return h.create(ctx, Announcement{Versions: versions, Domain: domain})
}

// NotifyEndpoint is Notify for the one endpoint id ("update now"): an
// unknown endpoint is store.ErrNotFound, a revoked one store.ErrRevoked.
func (h *Hub) NotifyEndpoint(ctx context.Context, versions map[string]string, id string) (store.Notification, error) {
	if id == "" {
		return store.Notification{}, fmt.Errorf("notify endpoint: %w: no endpoint id", store.ErrInvalid)
	}
	return h.create(ctx, Announcement{Versions: versions, Endpoint: id})
}

// create is Notify.
func (h *Hub) create(ctx context.Context, a Announcement) (store.Notification, error) {
	const op = "notify endpoints"
	versions := a.Versions
	if versions == nil {
		versions = map[string]string{}
	}
	for name, v := range versions {
		if name == "" || v == "" {
			return store.Notification{}, fmt.Errorf("%s: %w: component %q version %q", op, store.ErrInvalid, name, v)
		}
	}
	doc, err := json.Marshal(versions)
	if err != nil {
		return store.Notification{}, fmt.Errorf("%s: %w", op, err)
	}
	if len(doc) > notify.MaxEventSize-1024 {
		return store.Notification{}, fmt.Errorf("%s: %w: %d bytes of versions", op, notify.ErrTooLarge, len(doc))
	}
	var (
		n       store.Notification
		targets int
	)
	if a.Endpoint != "" {
		e, err := h.st.Endpoint(ctx, a.Endpoint)
		if err != nil {
			return store.Notification{}, fmt.Errorf("%s: %w", op, err)
		}
		if !e.Revoked.IsZero() {
			return store.Notification{}, fmt.Errorf("%s: endpoint %s: %w", op, e.ID, store.ErrRevoked)
		}
		// A lone endpoint has no clients to hold back behind it.
		n, err = h.st.CreateNotification(ctx, store.Notification{Versions: doc, Domain: e.Domain}, []string{e.ID})
		if err != nil {
			return store.Notification{}, fmt.Errorf("%s: %w", op, err)
		}
		targets = 1
	} else {
		// The store chooses the endpoints (every one of the domain that
		// is not revoked) and keeps agents first only when one of them
		// is an agent: none is read into the process.
		n, targets, err = h.st.CreateDomainNotification(ctx, store.Notification{Versions: doc, Domain: a.Domain, AgentsFirst: true})
		if err != nil {
			return store.Notification{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	f, err := encode(n)
	if err != nil {
		return store.Notification{}, fmt.Errorf("%s: %w", op, err)
	}
	t := &tracked{n: n, frame: f, agentsSent: true, clientsSent: !n.AgentsFirst, fresh: true}
	role := store.RoleAgent
	if !n.AgentsFirst {
		role = "" // every delivery is released
	}
	if err := h.dispatch(ctx, t, role); err != nil {
		// The deliveries stay pending: Run's next poll offers them again.
		t.agentsSent, t.clientsSent = false, false
		h.log.Warn("send notification", "notification", n.ID, "err", err)
	}
	h.tmu.Lock()
	if h.tracked[n.ID] == nil { // else a poll found it first and follows it
		h.tracked[n.ID] = t
	}
	h.tmu.Unlock()
	h.wake()
	h.log.Info("notification created", "notification", n.ID, "domain", n.Domain, "endpoints", targets,
		"agents_first", n.AgentsFirst)
	return n, nil
}

// Done records that endpoint's run for notification finished (ok: its
// components are up to date; otherwise detail says why not) and, when
// the endpoint is an update agent the clients wait for, releases them
// as soon as the last such agent is done. The server calls it when an
// endpoint's report names the notification (api.ReportUpload). Errors
// wrap store.ErrNotFound (no such delivery) and store.ErrConflict (the
// delivery already finished the other way).
func (h *Hub) Done(ctx context.Context, endpointID, notificationID string, ok bool, detail string) error {
	state := store.DeliveryDone
	if !ok {
		state = store.DeliveryFailed
	}
	if err := h.st.SetDeliveryState(ctx, notificationID, endpointID, state, detail); err != nil {
		return fmt.Errorf("record notification outcome: %w", err)
	}
	h.tmu.Lock()
	t := h.tracked[notificationID]
	// Not followed yet: created by another process, not polled yet.
	waiting := t == nil || t.n.ClientsReleased.IsZero()
	h.tmu.Unlock()
	if waiting {
		h.wake()
	}
	return nil
}

// InFlight is the number of notifications this hub follows whose
// clients are still held back for the update agents.
func (h *Hub) InFlight() int {
	h.tmu.Lock()
	defer h.tmu.Unlock()
	n := 0
	for _, t := range h.tracked {
		if t.n.ClientsReleased.IsZero() {
			n++
		}
	}
	return n
}

// Connected reports whether the endpoint holds a stream to this hub.
func (h *Hub) Connected(endpointID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[endpointID] != nil
}

// ConnectedCount is the number of endpoints holding a stream to this
// hub.
func (h *Hub) ConnectedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Disconnect closes the endpoint's stream (for example after its
// credential was revoked).
func (h *Hub) Disconnect(endpointID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.conns[endpointID]; c != nil {
		c.close()
	}
}

// dispatch offers t's pending deliveries of role ("": every role) to
// the connected streams.
func (h *Hub) dispatch(ctx context.Context, t *tracked, role store.Role) error {
	if h.ConnectedCount() == 0 {
		return nil
	}
	eps, err := h.st.PendingEndpoints(ctx, t.n.ID, role)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ep := range eps {
		if c := h.conns[ep]; c != nil {
			c.enqueue(t.frame)
		}
	}
	return nil
}
