package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// fixture is a hub over an SQLite store with endpoints, served by an
// httptest server whose "authentication" takes the endpoint id from the
// bearer token (the server's real middleware hashes credentials).
type fixture struct {
	t   *testing.T
	st  store.Store
	hub *Hub
	srv *httptest.Server
	eps map[string]store.Endpoint // by name
	mu  sync.Mutex
	now time.Time
}

func newFixture(t *testing.T, timeout time.Duration) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fx := &fixture{t: t, st: st, eps: map[string]store.Endpoint{}, now: time.Now()}
	fx.hub, err = NewHub(Options{Store: st, AgentTimeout: timeout, Heartbeat: 50 * time.Millisecond, Now: fx.clock})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"berlin", "paris"} {
		if _, err := st.CreateDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	fx.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Authorization")
		if len(id) > 7 {
			if e, err := st.Endpoint(r.Context(), id[7:]); err == nil {
				r = r.WithContext(WithEndpoint(r.Context(), Endpoint{ID: e.ID, Role: e.Role, Domain: e.Domain}))
			}
		}
		fx.hub.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(fx.srv.Close)
	return fx
}

func (fx *fixture) clock() time.Time { fx.mu.Lock(); defer fx.mu.Unlock(); return fx.now }

func (fx *fixture) advance(d time.Duration) { fx.mu.Lock(); fx.now = fx.now.Add(d); fx.mu.Unlock() }

func (fx *fixture) endpoint(name, domain string, role store.Role) store.Endpoint {
	fx.t.Helper()
	_, h, _ := store.NewSecret("t")
	e := store.Endpoint{Hostname: name, Domain: domain, Role: role, CredentialHash: h}
	if role == store.RoleAgent {
		e.AgentID = name
	}
	e, err := fx.st.CreateEndpoint(context.Background(), e)
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.eps[name] = e
	return e
}

// listener is a running Listen of one endpoint, collecting its events.
type listener struct {
	events chan Event
	cancel context.CancelFunc
	done   chan error
}

func (fx *fixture) listen(name string) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{events: make(chan Event, 16), cancel: cancel, done: make(chan error, 1)}
	go func() {
		l.done <- Listen(ctx, ListenOptions{URL: fx.srv.URL, Token: fx.eps[name].ID, Client: fx.srv.Client(),
			OnEvent: func(e Event) { l.events <- e }, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	}()
	fx.t.Cleanup(func() { l.stop() })
	return l
}

func (l *listener) stop() {
	if l.cancel != nil {
		l.cancel()
		<-l.done
		l.cancel = nil
	}
}

// next waits for an event (the test fails after 10 s, a hang, not a timing).
func (l *listener) next(t *testing.T) Event {
	t.Helper()
	select {
	case e := <-l.events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return Event{}
	}
}

// none checks that nothing arrived while the hub processed everything
// queued so far.
func (l *listener) none(t *testing.T) {
	t.Helper()
	select {
	case e := <-l.events:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
}

func (fx *fixture) waitConnected(n int) {
	for i := 0; fx.hub.ConnectedCount() < n; i++ {
		if i > 1000 {
			fx.t.Fatalf("%d of %d endpoints connected", fx.hub.ConnectedCount(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (fx *fixture) state(id, name string) store.DeliveryState {
	ds, err := fx.st.Deliveries(context.Background(), id, store.DeliveryFilter{})
	if err != nil {
		fx.t.Fatal(err)
	}
	for _, d := range ds {
		if d.EndpointID == fx.eps[name].ID {
			return d.State
		}
	}
	return ""
}

// waitState waits until the delivery is recorded (it is written right
// after the event).
func (fx *fixture) waitState(id, name string, want store.DeliveryState) {
	fx.t.Helper()
	for i := 0; fx.state(id, name) != want; i++ {
		if i > 1000 {
			fx.t.Fatalf("%s: state %s, want %s", name, fx.state(id, name), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAgentsFirstThenClients(t *testing.T) {
	fx := newFixture(t, time.Hour)
	fx.endpoint("ua-1", "berlin", store.RoleAgent)
	fx.endpoint("ua-2", "berlin", store.RoleAgent)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	a1, a2, c1 := fx.listen("ua-1"), fx.listen("ua-2"), fx.listen("c-1")
	fx.waitConnected(3)
	ctx := context.Background()
	id, err := fx.hub.Notify(ctx, Announcement{Versions: map[string]string{"pattern": "2.0"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*listener{a1, a2} {
		if e := l.next(t); e.ID != id || e.Versions["pattern"] != "2.0" {
			t.Fatalf("agent event %+v", e)
		}
	}
	if err := fx.hub.Done(ctx, fx.eps["ua-1"].ID, id, true); err != nil {
		t.Fatal(err)
	}
	c1.none(t)
	fx.waitState(id, "ua-2", store.DeliveryDelivered)
	if fx.state(id, "c-1") != store.DeliveryPending {
		t.Fatalf("client state %s before the agents are done", fx.state(id, "c-1"))
	}
	if err := fx.hub.Done(ctx, fx.eps["ua-2"].ID, id, false); err != nil {
		t.Fatal(err)
	}
	if e := c1.next(t); e.ID != id {
		t.Fatalf("client event %+v", e)
	}
	if fx.state(id, "ua-2") != store.DeliveryFailed || fx.state(id, "ua-1") != store.DeliveryDone {
		t.Fatal("agent states not recorded")
	}
}

func TestClientsReleasedAfterTimeout(t *testing.T) {
	fx := newFixture(t, time.Minute)
	fx.endpoint("ua-1", "berlin", store.RoleAgent)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	c1 := fx.listen("c-1")
	fx.waitConnected(1)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- fx.hub.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	id, err := fx.hub.Notify(context.Background(), Announcement{Versions: map[string]string{"pattern": "2.0"}})
	if err != nil {
		t.Fatal(err)
	}
	c1.none(t)
	fx.advance(2 * time.Minute) // the agent never reports
	if e := c1.next(t); e.ID != id {
		t.Fatalf("event %+v", e)
	}
}

func TestOfflineEndpointNotifiedOnReconnect(t *testing.T) {
	fx := newFixture(t, time.Hour)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	fx.endpoint("c-2", "paris", store.RoleClient)
	id, err := fx.hub.Notify(context.Background(), Announcement{Versions: map[string]string{"engine": "7.1"}, Domain: "berlin"})
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := fx.listen("c-1"), fx.listen("c-2")
	if e := c1.next(t); e.ID != id || e.Versions["engine"] != "7.1" {
		t.Fatalf("event %+v", e)
	}
	fx.waitConnected(2)
	c2.none(t) // another domain
	fx.waitState(id, "c-1", store.DeliveryDelivered)
	// Reconnecting does not resend a delivered notification.
	c1.stop()
	c1 = fx.listen("c-1")
	fx.waitConnected(2)
	id2, _ := fx.hub.Notify(context.Background(), Announcement{Versions: map[string]string{"engine": "7.2"}, Domain: "berlin"})
	if e := c1.next(t); e.ID != id2 {
		t.Fatalf("after reconnect got %+v, want only the new notification %s", e, id2)
	}
}

func TestReplacedStreamAndUnauthenticated(t *testing.T) {
	fx := newFixture(t, time.Hour)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	first := fx.listen("c-1")
	fx.waitConnected(1)
	second := fx.listen("c-1")
	// The first stream is replaced; its listener reconnects in turn.
	// Whichever holds the stream gets the event, exactly once overall.
	id, _ := fx.hub.Notify(context.Background(), Announcement{Versions: map[string]string{"p": "1"}})
	got := 0
	for got == 0 {
		select {
		case e := <-first.events:
			got += check(t, e, id)
		case e := <-second.events:
			got += check(t, e, id)
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
	}
	if fx.hub.ConnectedCount() != 1 {
		t.Fatalf("%d streams for one endpoint", fx.hub.ConnectedCount())
	}
	resp, err := http.Get(fx.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: %s", resp.Status)
	}
}

func check(t *testing.T, e Event, id string) int {
	if e.ID != id {
		t.Fatalf("event %+v, want %s", e, id)
	}
	return 1
}

func TestListenReconnectsAfterServerRestart(t *testing.T) {
	fx := newFixture(t, time.Hour)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	l := fx.listen("c-1")
	fx.waitConnected(1)
	fx.srv.CloseClientConnections()
	id, _ := fx.hub.Notify(context.Background(), Announcement{Versions: map[string]string{"p": "9"}})
	if e := l.next(t); e.ID != id {
		t.Fatalf("event %+v", e)
	}
}

func TestNotifyNeedsVersions(t *testing.T) {
	fx := newFixture(t, time.Hour)
	if _, err := fx.hub.Notify(context.Background(), Announcement{}); err == nil {
		t.Fatal("empty announcement accepted")
	}
}
