package hub

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/notify"
	"github.com/cascade-update/cascade/internal/notify/listen"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// patience bounds every wait of these tests: reaching it means a hang,
// not a slow machine. No test asserts on a duration.
const patience = 20 * time.Second

// opener opens an empty store on clock, closed at cleanup.
type opener func(t *testing.T, clock func() time.Time) store.Store

// forEachStore runs f against SQLite and, when CASCADE_TEST_POSTGRES is
// set (scripts/postgres-test-setup), PostgreSQL.
func forEachStore(t *testing.T, f func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, func(t *testing.T, clock func() time.Time) store.Store {
			return openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "cascade.db"), clock)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, func(t *testing.T, clock func() time.Time) store.Store {
			return openStore(t, pgtest.DSN(t), clock)
		})
	})
}

func openStore(t *testing.T, dsn string, clock func() time.Time) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, store.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fixture is a store with endpoints in the domains "berlin" and "paris"
// and one or more hubs, each running and served by an httptest server
// whose "authentication" takes the endpoint id from the bearer token
// (the server's real middleware checks credentials).
type fixture struct {
	t     *testing.T
	st    store.Store
	clock *testkit.Clock
	eps   map[string]store.Endpoint // by name
	hubs  []*served
}

// served is one hub and its server.
type served struct {
	hub    *Hub
	srv    *httptest.Server
	stop   func()
	mu     sync.Mutex
	lastID map[string][]string // by endpoint id: the Last-Event-ID of each request
	protos []int
}

func newFixture(t *testing.T, open opener) *fixture {
	fx := &fixture{t: t, clock: testkit.NewClock(time.Now().UTC()), eps: map[string]store.Endpoint{}}
	fx.st = open(t, fx.clock.Now)
	for _, d := range []string{"berlin", "paris"} {
		if _, err := fx.st.CreateDomain(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

// options are the hub options of the tests: fast polls and heartbeats,
// agents waited for an hour of the fake clock, offline once a poll
// interval has passed.
func (fx *fixture) options() Options {
	return Options{Store: fx.st, Now: fx.clock.Now, AgentTimeout: time.Hour, PollInterval: 10 * time.Millisecond,
		ReconnectGrace: 10 * time.Millisecond, Heartbeat: 20 * time.Millisecond}
}

// serve starts a hub (running) and its server; h2 serves HTTP/2 over TLS.
func (fx *fixture) serve(o Options, h2 bool) *served {
	fx.t.Helper()
	hub, err := New(o)
	if err != nil {
		fx.t.Fatal(err)
	}
	s := &served{hub: hub, lastID: map[string][]string{}}
	s.srv = httptest.NewUnstartedServer(s.auth(fx.st))
	if h2 {
		s.srv.EnableHTTP2 = true
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.stop = fx.run(hub)
	fx.t.Cleanup(func() { s.stop(); s.srv.Close() })
	fx.hubs = append(fx.hubs, s)
	return s
}

// run runs hub until the returned function is called (it waits for Run
// to return, and fails the test if Run failed).
func (fx *fixture) run(hub *Hub) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	testkit.Eventually(fx.t, patience, "hub running", func() bool {
		hub.mu.Lock()
		defer hub.mu.Unlock()
		return hub.running
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				fx.t.Errorf("hub: %v", err)
			}
		})
	}
}

func (s *served) auth(st store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			if e, err := st.Endpoint(r.Context(), id); err == nil {
				r = r.WithContext(WithEndpoint(r.Context(), Endpoint{ID: e.ID, Role: e.Role, Domain: e.Domain}))
				s.mu.Lock()
				s.lastID[e.ID] = append(s.lastID[e.ID], r.Header.Get("Last-Event-ID"))
				s.protos = append(s.protos, r.ProtoMajor)
				s.mu.Unlock()
			}
		}
		s.hub.Handler().ServeHTTP(w, r)
	})
}

// lastIDs returns the Last-Event-ID of each request of an endpoint.
func (s *served) lastIDs(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lastID[id]...)
}

func (fx *fixture) endpoint(name, domain string, role store.Role) store.Endpoint {
	fx.t.Helper()
	_, h, err := store.NewSecret("t")
	if err != nil {
		fx.t.Fatal(err)
	}
	e := store.Endpoint{Hostname: name, Domain: domain, Role: role, CredentialHash: h}
	if role == store.RoleAgent {
		e.AgentID = name
	}
	e, err = fx.st.CreateEndpoint(context.Background(), e)
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.eps[name] = e
	return e
}

// testListener is a running listen.Run of one endpoint, collecting its events.
type testListener struct {
	events chan notify.Event
	cancel context.CancelFunc
	done   chan error
}

// listen runs listen.Run for the endpoint named name against s.
func (fx *fixture) listen(s *served, name string) *testListener {
	return fx.listenFrom(s, name, "")
}

// listenFrom is listen resuming after the event last ("": a new
// listener).
func (fx *fixture) listenFrom(s *served, name, last string) *testListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &testListener{events: make(chan notify.Event, 64), cancel: cancel, done: make(chan error, 1)}
	o := listen.Options{URL: s.srv.URL, Token: fx.eps[name].ID, Client: s.srv.Client(), LastEventID: last,
		OnEvent: func(e notify.Event) { l.events <- e }, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	go func() { l.done <- listen.Run(ctx, o) }()
	fx.t.Cleanup(l.stop)
	return l
}

func (l *testListener) stop() {
	if l.cancel != nil {
		l.cancel()
		<-l.done
		l.cancel = nil
	}
}

// next returns the next event (failing after patience).
func (l *testListener) next(t *testing.T) notify.Event {
	t.Helper()
	select {
	case e := <-l.events:
		return e
	case <-time.After(patience):
		t.Fatal("no event")
		return notify.Event{}
	}
}

// expect checks that the next event is notification id.
func (l *testListener) expect(t *testing.T, id string) notify.Event {
	t.Helper()
	e := l.next(t)
	if e.ID != id {
		t.Fatalf("got notification %s, want %s", e.ID, id)
	}
	return e
}

// none checks that no event has arrived.
func (l *testListener) none(t *testing.T) {
	t.Helper()
	select {
	case e := <-l.events:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
}

// connected waits until the named endpoints hold a stream to s.
func (fx *fixture) connected(s *served, names ...string) {
	fx.t.Helper()
	for _, n := range names {
		testkit.Eventually(fx.t, patience, n+" connected", func() bool { return s.hub.Connected(fx.eps[n].ID) })
	}
}

// state returns the delivery state of notification id to the named
// endpoint ("" when it has no delivery).
func (fx *fixture) state(id, name string) store.DeliveryState {
	fx.t.Helper()
	d := fx.delivery(id, name)
	return d.State
}

func (fx *fixture) delivery(id, name string) store.Delivery {
	fx.t.Helper()
	ds, err := fx.st.Deliveries(context.Background(), id, store.DeliveryFilter{})
	if err != nil {
		fx.t.Fatal(err)
	}
	for _, d := range ds {
		if d.EndpointID == fx.eps[name].ID {
			return d
		}
	}
	return store.Delivery{}
}

// waitState waits until the delivery reaches want (it is recorded right
// after the event is written).
func (fx *fixture) waitState(id, name string, want store.DeliveryState) {
	fx.t.Helper()
	testkit.Eventually(fx.t, patience, name+" "+string(want), func() bool { return fx.state(id, name) == want })
}

func (fx *fixture) notify(s *served, a Announcement) string {
	fx.t.Helper()
	id, err := s.hub.Notify(context.Background(), a)
	if err != nil {
		fx.t.Fatal(err)
	}
	return id
}

func (fx *fixture) done(s *served, name, id string, ok bool) {
	fx.t.Helper()
	if err := s.hub.Done(context.Background(), fx.eps[name].ID, id, ok, "test"); err != nil {
		fx.t.Fatal(err)
	}
}

func (fx *fixture) released(id string) bool {
	fx.t.Helper()
	ns, err := fx.st.ListNotifications(context.Background(), 0)
	if err != nil {
		fx.t.Fatal(err)
	}
	for _, n := range ns {
		if n.ID == id {
			return !n.ClientsReleased.IsZero()
		}
	}
	fx.t.Fatalf("notification %s not stored", id)
	return false
}

// rawStream is an event stream read without listen.Run.
type rawStream struct {
	resp *http.Response
	p    *notify.Parser
}

// open opens a stream for the named endpoint with Last-Event-ID last
// ("": none) and reads the ": connected" comment.
func (fx *fixture) open(s *served, name, last string) *rawStream {
	fx.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+fx.eps[name].ID)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		fx.t.Fatalf("stream: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return &rawStream{resp: resp, p: notify.NewParser(resp.Body, notify.MaxEventSize)}
}

// next reads the next notification event (heartbeats skipped).
func (r *rawStream) next(t *testing.T) (notify.Parsed, error) {
	t.Helper()
	type res struct {
		p   notify.Parsed
		err error
	}
	c := make(chan res, 1)
	go func() { p, err := r.p.Next(func() {}); c <- res{p, err} }()
	select {
	case x := <-c:
		return x.p, x.err
	case <-time.After(patience):
		r.resp.Body.Close()
		t.Fatal("stream: nothing read")
		return notify.Parsed{}, nil
	}
}

// end reads the stream until it ends (failing after patience, with
// what it was waiting for: a hang or a stream that never stops).
func (r *rawStream) end(t *testing.T, what string) {
	t.Helper()
	testkit.Eventually(t, patience, what, func() bool {
		_, err := r.next(t)
		return err != nil
	})
}
