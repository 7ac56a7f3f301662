package hub

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/notify"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
)

var v2 = map[string]string{"pattern": "2.0", "engine": "7.1"}

func TestAgentsFirstThenClients(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		s := fx.serve(fx.options(), false)
		fx.endpoint("ua-1", "berlin", store.RoleAgent)
		fx.endpoint("ua-2", "paris", store.RoleAgent)
		fx.endpoint("c-1", "berlin", store.RoleClient)
		fx.endpoint("c-2", "paris", store.RoleClient)
		a1, a2, c1, c2 := fx.listen(s, "ua-1"), fx.listen(s, "ua-2"), fx.listen(s, "c-1"), fx.listen(s, "c-2")
		fx.connected(s, "ua-1", "ua-2", "c-1", "c-2")

		id := fx.notify(s, Announcement{Versions: v2})
		for _, l := range []*testListener{a1, a2} {
			if e := l.expect(t, id); !maps.Equal(e.Versions, v2) || e.Created.IsZero() {
				t.Fatalf("agent event %+v", e)
			}
		}
		fx.waitState(id, "ua-1", store.DeliveryDelivered)
		fx.waitState(id, "ua-2", store.DeliveryDelivered)
		fx.done(s, "ua-1", id, true)
		fullPoll(s.hub)
		// One agent is still updating: the clients wait.
		if fx.released(id) || fx.state(id, "c-1") != store.DeliveryPending || fx.state(id, "c-2") != store.DeliveryPending {
			t.Fatal("clients released before every agent reported")
		}
		c1.none(t)
		c2.none(t)

		fx.done(s, "ua-2", id, false) // failed counts as reported
		for _, l := range []*testListener{c1, c2} {
			if e := l.expect(t, id); !maps.Equal(e.Versions, v2) {
				t.Fatalf("client event %+v", e)
			}
		}
		if !fx.released(id) {
			t.Fatal("clients notified but the notification is not released")
		}
		fx.waitState(id, "c-1", store.DeliveryDelivered)
		fx.waitState(id, "c-2", store.DeliveryDelivered)
		fx.done(s, "c-1", id, true)
		if d := fx.delivery(id, "ua-2"); d.State != store.DeliveryFailed || d.Detail != "test" {
			t.Fatalf("failed agent delivery %+v", d)
		}
		for name, want := range map[string]store.DeliveryState{"ua-1": store.DeliveryDone, "c-1": store.DeliveryDone,
			"c-2": store.DeliveryDelivered} {
			if got := fx.state(id, name); got != want {
				t.Errorf("%s: %s, want %s", name, got, want)
			}
		}
	})
}

func TestClientsReleasedOnAgentTimeout(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		o := fx.options()
		s := fx.serve(o, false)
		fx.endpoint("ua-1", "berlin", store.RoleAgent)
		fx.endpoint("c-1", "berlin", store.RoleClient)
		a, c := fx.listen(s, "ua-1"), fx.listen(s, "c-1")
		fx.connected(s, "ua-1", "c-1")

		id := fx.notify(s, Announcement{Versions: v2})
		a.expect(t, id)
		fx.waitState(id, "ua-1", store.DeliveryDelivered)
		fx.clock.Advance(o.AgentTimeout / 2)
		fullPoll(s.hub)
		if fx.released(id) {
			t.Fatal("clients released before the agent timeout while the agent is updating")
		}
		c.none(t)

		fx.clock.Advance(o.AgentTimeout / 2) // the agent never reports
		c.expect(t, id)
		if !fx.released(id) || fx.state(id, "ua-1") != store.DeliveryDelivered {
			t.Fatalf("released %v, agent %s", fx.released(id), fx.state(id, "ua-1"))
		}
	})
}

// fullPoll returns once a poll of h that started after the call has
// ended. Run takes a kick between polls and the kick channel holds one:
// when the third send returns, two kicks were taken since the call, and
// the poll the first of them started is over.
func fullPoll(h *Hub) {
	for range 3 {
		h.kick <- struct{}{}
	}
}

func TestOfflineAgentDoesNotHoldClientsBeyondAPoll(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		o := fx.options()
		s := fx.serve(o, false)
		fx.endpoint("ua-on", "berlin", store.RoleAgent)
		fx.endpoint("ua-off", "berlin", store.RoleAgent)
		fx.endpoint("c-1", "berlin", store.RoleClient)
		a, c := fx.listen(s, "ua-on"), fx.listen(s, "c-1")
		fx.connected(s, "ua-on", "c-1")

		id := fx.notify(s, Announcement{Versions: v2})
		a.expect(t, id)
		fx.done(s, "ua-on", id, true)
		fullPoll(s.hub)
		if fx.released(id) {
			t.Fatal("released before a poll interval passed with an agent offline")
		}
		fx.clock.Advance(o.PollInterval)
		c.expect(t, id)

		off := fx.listen(s, "ua-off") // the offline agent comes back
		off.expect(t, id)
		fx.waitState(id, "ua-off", store.DeliveryDelivered)
	})
}

// TestRestartedHubWaitsForReconnectingAgents: right after a (re)start
// every endpoint is reconnecting, and an event written just before a
// crash may have no record: an agent without a recorded delivery holds
// the clients for the reconnect grace, not just a poll interval.
func TestRestartedHubWaitsForReconnectingAgents(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		o := fx.options()
		o.ReconnectGrace = time.Minute
		s := fx.serve(o, false)
		fx.endpoint("ua-1", "berlin", store.RoleAgent)
		fx.endpoint("c-1", "berlin", store.RoleClient)
		c := fx.listen(s, "c-1")
		fx.connected(s, "c-1")

		// The agent reconnects within the grace and reports: released
		// once it is done.
		first := fx.notify(s, Announcement{Versions: v2})
		fx.clock.Advance(o.PollInterval)
		fullPoll(s.hub)
		if fx.released(first) {
			t.Fatal("released a poll interval after a start, while the agent may be reconnecting")
		}
		a := fx.listen(s, "ua-1")
		a.expect(t, first)
		fx.waitState(first, "ua-1", store.DeliveryDelivered)
		fx.done(s, "ua-1", first, true)
		c.expect(t, first)

		// The agent goes while the hub runs: it is offline, not
		// reconnecting after a restart, and holds the clients for a poll
		// interval only, within the grace.
		a.stop()
		testkit.Eventually(fx.t, patience, "ua-1 gone", func() bool { return !s.hub.Connected(fx.eps["ua-1"].ID) })
		second := fx.notify(s, Announcement{Versions: map[string]string{"pattern": "3.0"}})
		fullPoll(s.hub)
		if fx.released(second) {
			t.Fatal("released before a poll interval passed")
		}
		fx.clock.Advance(o.PollInterval)
		c.expect(t, second)
		if fx.state(second, "ua-1") != store.DeliveryPending {
			t.Fatalf("offline agent: %s", fx.state(second, "ua-1"))
		}
	})
}

// TestAgentGoneWhileRunningGetsNoGrace: within the reconnect grace, an
// agent that has not connected since the hub started still holds the
// clients (it may be reconnecting after the restart) while one whose
// stream closed during the run does not; once the first is back and
// done, the clients are released without waiting for the grace.
func TestAgentGoneWhileRunningGetsNoGrace(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		o := fx.options()
		o.ReconnectGrace = time.Hour
		s := fx.serve(o, false)
		fx.endpoint("ua-gone", "berlin", store.RoleAgent)
		fx.endpoint("ua-back", "berlin", store.RoleAgent)
		fx.endpoint("c-1", "berlin", store.RoleClient)
		gone, c := fx.listen(s, "ua-gone"), fx.listen(s, "c-1")
		fx.connected(s, "ua-gone", "c-1")
		gone.stop()
		testkit.Eventually(fx.t, patience, "ua-gone gone", func() bool { return !s.hub.Connected(fx.eps["ua-gone"].ID) })

		id := fx.notify(s, Announcement{Versions: v2})
		fx.clock.Advance(o.PollInterval)
		fullPoll(s.hub)
		if fx.released(id) {
			t.Fatal("released within the grace while ua-back, not seen since the start, may be reconnecting")
		}
		c.none(t)

		back := fx.listen(s, "ua-back")
		back.expect(t, id)
		fx.waitState(id, "ua-back", store.DeliveryDelivered)
		fx.done(s, "ua-back", id, true)
		c.expect(t, id)
		if fx.state(id, "ua-gone") != store.DeliveryPending {
			t.Fatalf("agent gone: %s", fx.state(id, "ua-gone"))
		}
	})
}

func TestOfflineEndpointNotifiedOnReconnect(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		s := fx.serve(fx.options(), false)
		fx.endpoint("c-1", "berlin", store.RoleClient)
		fx.endpoint("c-2", "berlin", store.RoleClient)
		first := fx.notify(s, Announcement{Versions: map[string]string{"engine": "7.1"}})
		fx.clock.Advance(time.Second) // pending notifications are sent oldest first
		second := fx.notify(s, Announcement{Versions: map[string]string{"engine": "7.2"}})
		if fx.state(first, "c-1") != store.DeliveryPending {
			t.Fatalf("offline endpoint: %s", fx.state(first, "c-1"))
		}

		c1 := fx.listen(s, "c-1")
		if e := c1.expect(t, first); e.Versions["engine"] != "7.1" {
			t.Fatalf("event %+v", e)
		}
		c1.expect(t, second)
		fx.waitState(first, "c-1", store.DeliveryDelivered)
		fx.waitState(second, "c-1", store.DeliveryDelivered)
		if fx.state(first, "c-2") != store.DeliveryPending {
			t.Fatal("the other offline endpoint's delivery moved")
		}

		// A new listener (no Last-Event-ID) gets only what is pending.
		c1.stop()
		testkit.Eventually(fx.t, patience, "c-1 gone", func() bool { return !s.hub.Connected(fx.eps["c-1"].ID) })
		c1 = fx.listen(s, "c-1")
		fx.connected(s, "c-1")
		third := fx.notify(s, Announcement{Versions: map[string]string{"engine": "7.3"}})
		c1.expect(t, third)
	})
}

func TestDomainTargeting(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		s := fx.serve(fx.options(), false)
		fx.endpoint("b-1", "berlin", store.RoleClient)
		fx.endpoint("p-1", "paris", store.RoleClient)
		fx.endpoint("p-ua", "paris", store.RoleAgent)
		revoked := fx.endpoint("b-old", "berlin", store.RoleClient)
		if err := fx.st.RevokeEndpoint(context.Background(), revoked.ID); err != nil {
			t.Fatal(err)
		}
		b, p := fx.listen(s, "b-1"), fx.listen(s, "p-1")
		fx.connected(s, "b-1", "p-1")

		id := fx.notify(s, Announcement{Versions: v2, Domain: "berlin"})
		if e := b.expect(t, id); e.Domain != "berlin" {
			t.Fatalf("event %+v", e)
		}
		ds, err := fx.st.Deliveries(context.Background(), id, store.DeliveryFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].EndpointID != fx.eps["b-1"].ID {
			t.Fatalf("deliveries of a berlin notification: %+v", ds)
		}
		// Every domain: paris has an agent, so its client waits; its first
		// event is the second notification.
		all := fx.notify(s, Announcement{Versions: v2})
		fx.done(s, "p-ua", all, true)
		p.expect(t, all)
		b.expect(t, all)
	})
}

func TestReplacedStream(t *testing.T) {
	fx := newFixture(t, sqliteOnly)
	s := fx.serve(fx.options(), false)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	old := fx.open(s, "c-1", "")
	fx.connected(s, "c-1")
	cur := fx.open(s, "c-1", "")
	old.end(t, "the replaced stream to end")
	if n := s.hub.ConnectedCount(); n != 1 {
		t.Fatalf("%d streams for one endpoint", n)
	}
	id := fx.notify(s, Announcement{Versions: v2})
	ev, err := cur.next(t)
	if err != nil || ev.Event.ID != id || ev.ID != id {
		t.Fatalf("current stream: %+v, %v", ev, err)
	}
	fx.waitState(id, "c-1", store.DeliveryDelivered)
}

func sqliteOnly(t *testing.T, clock func() time.Time) store.Store {
	return openStore(t, "sqlite:"+t.TempDir()+"/cascade.db", clock)
}

func TestUnauthenticatedAndNotRunning(t *testing.T) {
	fx := newFixture(t, sqliteOnly)
	s := fx.serve(fx.options(), false)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	for _, auth := range []string{"", "Bearer nobody"} {
		req, _ := http.NewRequest(http.MethodGet, s.srv.URL, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%q: %s", auth, resp.Status)
		}
	}
	if s.hub.ConnectedCount() != 0 {
		t.Fatal("an unauthenticated request holds a stream")
	}

	idle, err := New(fx.options()) // never run
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	idle.ServeHTTP(rec, req.WithContext(WithEndpoint(req.Context(), Endpoint{ID: fx.eps["c-1"].ID})))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("hub not running: %d", rec.Code)
	}
}

func TestDisconnectAndStop(t *testing.T) {
	fx := newFixture(t, sqliteOnly)
	s := fx.serve(fx.options(), false)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	st := fx.open(s, "c-1", "")
	fx.connected(s, "c-1")
	s.hub.Disconnect(fx.eps["c-1"].ID)
	st.end(t, "the disconnected stream to end")
	testkit.Eventually(fx.t, patience, "disconnected", func() bool { return s.hub.ConnectedCount() == 0 })

	st = fx.open(s, "c-1", "")
	fx.connected(s, "c-1")
	s.stop() // Run returns: every stream ends
	st.end(t, "the stream to end when the hub stops")
}

func TestNotifyValidates(t *testing.T) {
	fx := newFixture(t, sqliteOnly)
	s := fx.serve(fx.options(), false)
	if _, err := s.hub.Notify(context.Background(), Announcement{Versions: map[string]string{"pattern": ""}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty version: %v", err)
	}
	big := map[string]string{}
	for i := range 20000 {
		big[string(rune('a'+i%26))+string(rune(i))] = "1.0.0.0.0"
	}
	if _, err := s.hub.Notify(context.Background(), Announcement{Versions: big}); !errors.Is(err, notify.ErrTooLarge) {
		t.Fatalf("huge announcement: %v", err)
	}
	// No endpoint and no versions: recorded, released at once.
	n, err := s.hub.NotifyAll(context.Background(), nil, "")
	if err != nil || n.AgentsFirst || n.ClientsReleased.IsZero() || string(n.Versions) != "{}" {
		t.Fatalf("empty notification %+v, %v", n, err)
	}
}

func TestHeartbeatAndHeaders(t *testing.T) {
	fx := newFixture(t, sqliteOnly)
	s := fx.serve(fx.options(), false)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	st := fx.open(s, "c-1", "")
	if cc := st.resp.Header.Get("Cache-Control"); cc != "no-store" || st.resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("headers %v", st.resp.Header)
	}
	stop := time.AfterFunc(patience, func() { st.resp.Body.Close() }) // a hang, not a timing
	defer stop.Stop()
	lines := bufio.NewReader(st.resp.Body) // nothing was read through st.p
	for {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimRight(line, "\r\n") == ": ping" {
			return
		}
	}
}

func TestStreamQueue(t *testing.T) {
	c := newConn(Endpoint{ID: "ep"}, 2, "seen")
	c.enqueue(&frame{id: "seen"}) // the endpoint's last event: never again
	c.enqueue(&frame{id: "a"})
	c.enqueue(&frame{id: "a"}) // once per stream
	if q := c.take(); len(q) != 1 || q[0].id != "a" {
		t.Fatalf("queue %v", q)
	}
	c.enqueue(&frame{id: "b"})
	c.enqueue(&frame{id: "c"})
	select {
	case <-c.done:
		t.Fatal("closed with a queue not over its bound")
	default:
	}
	c.enqueue(&frame{id: "d"}) // over the bound: the stream is closed
	<-c.done
}

// TestNotifyEndpoint: "update now" reaches the one endpoint at once, even
// a client behind an update agent of its domain, and no other; a revoked
// or unknown endpoint is refused and nothing is stored.
func TestNotifyEndpoint(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		s := fx.serve(fx.options(), false)
		fx.endpoint("ua-1", "berlin", store.RoleAgent)
		fx.endpoint("c-1", "berlin", store.RoleClient)
		fx.endpoint("c-2", "berlin", store.RoleClient)
		revoked := fx.endpoint("c-old", "berlin", store.RoleClient)
		ctx := context.Background()
		if err := fx.st.RevokeEndpoint(ctx, revoked.ID); err != nil {
			t.Fatal(err)
		}
		a, c1, c2 := fx.listen(s, "ua-1"), fx.listen(s, "c-1"), fx.listen(s, "c-2")
		fx.connected(s, "ua-1", "c-1", "c-2")

		n, err := s.hub.NotifyEndpoint(ctx, v2, fx.eps["c-1"].ID)
		if err != nil {
			t.Fatal(err)
		}
		if e := c1.expect(t, n.ID); e.Domain != "berlin" || !maps.Equal(e.Versions, v2) {
			t.Fatalf("event %+v", e)
		}
		if n.AgentsFirst || n.ClientsReleased.IsZero() {
			t.Fatalf("a lone endpoint's notification waits for agents: %+v", n)
		}
		a.none(t)
		c2.none(t)
		ds, err := fx.st.Deliveries(ctx, n.ID, store.DeliveryFilter{})
		if err != nil || len(ds) != 1 || ds[0].EndpointID != fx.eps["c-1"].ID {
			t.Fatalf("deliveries: %+v %v", ds, err)
		}
		before, err := fx.st.ListNotifications(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.hub.NotifyEndpoint(ctx, v2, revoked.ID); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("revoked endpoint: %v", err)
		}
		if _, err := s.hub.NotifyEndpoint(ctx, v2, "ep_nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown endpoint: %v", err)
		}
		if after, err := fx.st.ListNotifications(ctx, 0); err != nil || len(after) != len(before) {
			t.Fatalf("refused notifications stored: %d then %d (%v)", len(before), len(after), err)
		}
	})
}
