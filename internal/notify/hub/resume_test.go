package hub

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
)

func TestListenReconnectsAfterServerRestart(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		fx.endpoint("c-1", "berlin", store.RoleClient)
		addr := testkit.FreeAddr(t, "127.0.0.1")
		start := func() *served {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			hub, err := New(fx.options())
			if err != nil {
				t.Fatal(err)
			}
			s := &served{hub: hub, lastID: map[string][]string{}}
			s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: s.auth(fx.st)}}
			s.srv.Start()
			s.stop = fx.run(hub)
			t.Cleanup(func() { s.stop(); s.srv.Close() })
			return s
		}
		s := start()
		l := fx.listen(s, "c-1")
		fx.connected(s, "c-1")
		before := fx.notify(s, Announcement{Versions: v2})
		l.expect(t, before)

		// The server goes down; a notification is made meanwhile (by
		// another process, here straight in the store).
		s.stop()
		s.srv.Close()
		n, err := fx.st.CreateNotification(context.Background(),
			store.Notification{Versions: []byte(`{"pattern":"3.0"}`)}, []string{fx.eps["c-1"].ID})
		if err != nil {
			t.Fatal(err)
		}
		s2 := start()
		if e := l.expect(t, n.ID); e.Versions["pattern"] != "3.0" {
			t.Fatalf("after restart: %+v", e)
		}
		fx.waitState(n.ID, "c-1", store.DeliveryDelivered)
		if ids := s2.lastIDs(fx.eps["c-1"].ID); len(ids) == 0 || ids[0] != before {
			t.Fatalf("Last-Event-ID after the restart: %q, want %q", ids, before)
		}
	})
}

func TestResumeWithLastEventID(t *testing.T) {
	fx := newFixture(t, sqliteOnly)
	s := fx.serve(fx.options(), false)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	st := fx.open(s, "c-1", "")
	fx.connected(s, "c-1")
	a := fx.notify(s, Announcement{Versions: map[string]string{"p": "1"}})
	fx.clock.Advance(time.Second)
	b := fx.notify(s, Announcement{Versions: map[string]string{"p": "2"}})
	for _, want := range []string{a, b} {
		if ev, err := st.next(t); err != nil || ev.ID != want {
			t.Fatalf("got %+v, %v; want %s", ev, err, want)
		}
	}
	fx.waitState(b, "c-1", store.DeliveryDelivered)
	st.resp.Body.Close()
	testkit.Eventually(fx.t, patience, "stream closed", func() bool { return !s.hub.Connected(fx.eps["c-1"].ID) })

	// The endpoint had processed a but b was lost with the connection:
	// resuming after a sends b again.
	st = fx.open(s, "c-1", a)
	if ev, err := st.next(t); err != nil || ev.ID != b {
		t.Fatalf("resumed after %s: %+v, %v; want %s", a, ev, err, b)
	}
	// Replacing that stream resuming after b sends nothing again: the
	// next event is a new notification.
	st2 := fx.open(s, "c-1", b)
	c := fx.notify(s, Announcement{Versions: map[string]string{"p": "3"}})
	if ev, err := st2.next(t); err != nil || ev.ID != c {
		t.Fatalf("resumed after %s: %+v, %v; want %s", b, ev, err, c)
	}

	// An id that is not among what the replaced stream wrote (c): c may
	// have been lost too and is sent again (the listener drops duplicates).
	st3 := fx.open(s, "c-1", "ntf_older")
	if ev, err := st3.next(t); err != nil || ev.ID != c {
		t.Fatalf("resumed after an unknown id: %+v, %v; want %s", ev, err, c)
	}

	// A pending delivery the endpoint names as its last event (the server
	// lost its record of sending it) is recorded delivered, not resent.
	fx.endpoint("c-2", "berlin", store.RoleClient)
	n, err := fx.st.CreateNotification(context.Background(), store.Notification{Versions: []byte(`{"p":"4"}`)},
		[]string{fx.eps["c-2"].ID})
	if err != nil {
		t.Fatal(err)
	}
	st4 := fx.open(s, "c-2", n.ID)
	fx.waitState(n.ID, "c-2", store.DeliveryDelivered)
	d := fx.notify(s, Announcement{Versions: map[string]string{"p": "5"}})
	if ev, err := st4.next(t); err != nil || ev.ID != d {
		t.Fatalf("after naming %s: %+v, %v; want %s", n.ID, ev, err, d)
	}
}

// TestSeveralProcesses runs two hubs on one store, as two server
// processes on PostgreSQL do: each sends what the other created or
// released to the endpoints connected to it.
func TestSeveralProcesses(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		a, b := fx.serve(fx.options(), false), fx.serve(fx.options(), false)
		fx.endpoint("ua-1", "berlin", store.RoleAgent)
		fx.endpoint("c-1", "berlin", store.RoleClient)
		agent, client := fx.listen(b, "ua-1"), fx.listen(a, "c-1")
		fx.connected(b, "ua-1")
		fx.connected(a, "c-1")

		id := fx.notify(a, Announcement{Versions: v2})
		agent.expect(t, id) // sent by b, which found it in the store
		fx.waitState(id, "ua-1", store.DeliveryDelivered)
		fullPoll(a.hub)
		client.none(t)
		// The report reaches b; a sees the agent done and releases.
		fx.done(b, "ua-1", id, true)
		client.expect(t, id)
		fx.waitState(id, "c-1", store.DeliveryDelivered)
	})
}

func TestHTTP2(t *testing.T) {
	fx := newFixture(t, sqliteOnly)
	s := fx.serve(fx.options(), true)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	l := fx.listen(s, "c-1")
	fx.connected(s, "c-1")
	id := fx.notify(s, Announcement{Versions: v2})
	l.expect(t, id)
	s.mu.Lock()
	protos := slices.Clone(s.protos)
	s.mu.Unlock()
	if len(protos) == 0 || protos[0] != 2 {
		t.Fatalf("protocols %v, want HTTP/2", protos)
	}
}
