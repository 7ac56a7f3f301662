package hub

import (
	"context"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// processes is a fixture of several hubs on one PostgreSQL schema, each
// with a store of its own, as server processes on different machines
// have. Their poll interval is an hour (of the real clock, which runs
// the poll): what they learn of each other, they learn from the store's
// signals, so these tests fail if the signals do not work.
func processes(t *testing.T, n int) (*fixture, []*served) {
	dsn := pgtest.DSN(t)
	fx := newFixture(t, func(t *testing.T, clock func() time.Time) store.Store { return openStore(t, dsn, clock) })
	hubs := make([]*served, n)
	for i := range hubs {
		o := fx.options()
		o.Store = openStore(t, dsn, fx.clock.Now)
		o.PollInterval = time.Hour
		hubs[i] = fx.serve(o, false)
	}
	return fx, hubs
}

// deliveredOnce checks that each endpoint named has one delivery of
// notification id, in state want.
func (fx *fixture) deliveredOnce(id string, want store.DeliveryState, names ...string) {
	fx.t.Helper()
	ds, err := fx.st.Deliveries(context.Background(), id, store.DeliveryFilter{})
	if err != nil {
		fx.t.Fatal(err)
	}
	got := map[string][]store.DeliveryState{}
	for _, d := range ds {
		got[d.EndpointID] = append(got[d.EndpointID], d.State)
	}
	for _, n := range names {
		if s := got[fx.eps[n].ID]; len(s) != 1 || s[0] != want {
			fx.t.Fatalf("deliveries of %s to %s: %v, want one %s", id, n, s, want)
		}
	}
}

// TestProcessesOnPostgres: a notification sent from one process reaches
// an agent connected to a second at once and a client connected to a
// third once the agent has reported to the second; each delivery is
// recorded once. Then the second process stops: its agent reconnects to
// the third and gets what was sent meanwhile, and its report there
// releases the clients of the first and third.
func TestProcessesOnPostgres(t *testing.T) {
	fx, p := processes(t, 3)
	a, b, c := p[0], p[1], p[2]
	fx.endpoint("ua-1", "berlin", store.RoleAgent)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	fx.endpoint("c-2", "berlin", store.RoleClient)
	agent, client1, client2 := fx.listen(b, "ua-1"), fx.listen(c, "c-1"), fx.listen(a, "c-2")
	fx.connected(b, "ua-1")
	fx.connected(c, "c-1")
	fx.connected(a, "c-2")

	first := fx.notify(a, Announcement{Versions: v2})
	agent.expect(t, first)
	fx.waitState(first, "ua-1", store.DeliveryDelivered)
	for _, s := range p {
		fullPoll(s.hub)
	}
	client1.none(t)
	client2.none(t)
	if fx.released(first) {
		t.Fatal("clients released before the agent reported")
	}
	fx.done(b, "ua-1", first, true)
	client1.expect(t, first)
	client2.expect(t, first)
	fx.waitState(first, "c-1", store.DeliveryDelivered)
	fx.waitState(first, "c-2", store.DeliveryDelivered)
	fx.deliveredOnce(first, store.DeliveryDone, "ua-1")
	fx.deliveredOnce(first, store.DeliveryDelivered, "c-1", "c-2")

	// b stops; the agent is offline while a sends the next notification.
	agent.stop()
	b.stop()
	b.srv.Close()
	second := fx.notify(a, Announcement{Versions: map[string]string{"pattern": "3.0"}})
	for _, s := range []*served{a, c} {
		fullPoll(s.hub)
	}
	client1.none(t)
	// The agent reconnects to c, resuming after the first notification.
	agent = fx.listenFrom(c, "ua-1", first)
	agent.expect(t, second)
	fx.waitState(second, "ua-1", store.DeliveryDelivered)
	client1.none(t)
	client2.none(t)
	fx.done(c, "ua-1", second, true)
	client1.expect(t, second)
	client2.expect(t, second)
	fx.waitState(second, "c-1", store.DeliveryDelivered)
	fx.waitState(second, "c-2", store.DeliveryDelivered)
	fx.deliveredOnce(second, store.DeliveryDone, "ua-1")
	fx.deliveredOnce(second, store.DeliveryDelivered, "c-1", "c-2")
}

// TestResumeOnAnotherProcess: an endpoint whose stream to one process
// ended after events were written to it (and recorded delivered) but
// perhaps not received resumes on another process, which does not know
// that stream: the events written after the one the endpoint names
// come again from the store's records.
func TestResumeOnAnotherProcess(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		fx := newFixture(t, open)
		a, b := fx.serve(fx.options(), false), fx.serve(fx.options(), false)
		fx.endpoint("c-1", "berlin", store.RoleClient)
		st := fx.open(a, "c-1", "")
		fx.connected(a, "c-1")
		x := fx.notify(a, Announcement{Versions: map[string]string{"p": "1"}})
		fx.clock.Advance(time.Second)
		y := fx.notify(a, Announcement{Versions: map[string]string{"p": "2"}})
		if ev, err := st.next(t); err != nil || ev.ID != x {
			t.Fatalf("got %+v, %v; want %s", ev, err, x)
		}
		// y was written, the endpoint never read it: a goes down.
		fx.waitState(y, "c-1", store.DeliveryDelivered)
		a.stop()
		st.resp.Body.Close()

		st = fx.open(b, "c-1", x)
		if ev, err := st.next(t); err != nil || ev.ID != y {
			t.Fatalf("resumed on another process after %s: %+v, %v; want %s", x, ev, err, y)
		}
		st.resp.Body.Close()
		testkit.Eventually(t, patience, "stream closed", func() bool { return !b.hub.Connected(fx.eps["c-1"].ID) })
		// On a third process, naming y: nothing is sent again, the next
		// event is a new notification.
		c := fx.serve(fx.options(), false)
		st = fx.open(c, "c-1", y)
		fx.clock.Advance(time.Second)
		z := fx.notify(c, Announcement{Versions: map[string]string{"p": "3"}})
		if ev, err := st.next(t); err != nil || ev.ID != z {
			t.Fatalf("resumed after %s: %+v, %v; want %s", y, ev, err, z)
		}
		// A finished delivery (the endpoint reported it) is not sent
		// again: it was received.
		fx.done(c, "c-1", z, true)
		st.resp.Body.Close()
		testkit.Eventually(t, patience, "stream closed", func() bool { return !c.hub.Connected(fx.eps["c-1"].ID) })
		d := fx.serve(fx.options(), false)
		st = fx.open(d, "c-1", y)
		fx.clock.Advance(time.Second)
		w := fx.notify(d, Announcement{Versions: map[string]string{"p": "4"}})
		if ev, err := st.next(t); err != nil || ev.ID != w {
			t.Fatalf("resumed after %s with %s done: %+v, %v; want %s", y, z, ev, err, w)
		}
	})
}

// TestAgentsOfAStoppedProcessHoldTheClients: when one of several
// processes stops, its agents reconnecting to the others hold the
// clients for the reconnect grace, as they do after a restart of a
// single process; once the grace has passed, an offline agent holds them
// for a poll interval only.
func TestAgentsOfAStoppedProcessHoldTheClients(t *testing.T) {
	dsn := pgtest.DSN(t)
	fx := newFixture(t, func(t *testing.T, clock func() time.Time) store.Store { return openStore(t, dsn, clock) })
	o := fx.options()
	o.PollInterval, o.ReconnectGrace, o.AgentTimeout = time.Hour, 3*time.Hour, 100*time.Hour
	o.Store = openStore(t, dsn, fx.clock.Now)
	a := fx.serve(o, false)
	o.Store = openStore(t, dsn, fx.clock.Now)
	b := fx.serve(o, false)
	fx.endpoint("ua-1", "berlin", store.RoleAgent)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	agent, client := fx.listen(b, "ua-1"), fx.listen(a, "c-1")
	fx.connected(b, "ua-1")
	fx.connected(a, "c-1")
	// Both have run for longer than the grace, and said so.
	fx.clock.Advance(4 * time.Hour)
	fullPoll(a.hub)
	fullPoll(b.hub)

	// b stops; its agent is reconnecting (to a) when a notifies.
	agent.stop()
	b.stop()
	b.srv.Close()
	fx.clock.Advance(time.Minute)
	id := fx.notify(a, Announcement{Versions: v2})
	fx.clock.Advance(time.Hour) // a poll interval: the agent counts as offline, but for the grace
	fullPoll(a.hub)
	client.none(t)
	if fx.released(id) {
		t.Fatal("clients released while the agents of a stopped process may be reconnecting")
	}
	agent = fx.listen(a, "ua-1")
	agent.expect(t, id)
	fx.done(a, "ua-1", id, true)
	client.expect(t, id)

	// The grace has passed: an agent that never connected holds the
	// clients for a poll interval only.
	fx.endpoint("ua-2", "berlin", store.RoleAgent)
	fx.clock.Advance(3 * time.Hour)
	fullPoll(a.hub)
	second := fx.notify(a, Announcement{Versions: map[string]string{"pattern": "3.0"}})
	agent.expect(t, second)
	fx.done(a, "ua-1", second, true)
	fullPoll(a.hub)
	client.none(t)
	fx.clock.Advance(time.Hour)
	fullPoll(a.hub)
	client.expect(t, second)
}

// crashingStore is a hub's store that never records the hub stopped, as
// when its process is killed.
type crashingStore struct{ Store }

func (s crashingStore) BeatHub(ctx context.Context, id string, stopped bool, silence time.Duration) (time.Time, error) {
	if stopped {
		return time.Time{}, nil
	}
	return s.Store.BeatHub(ctx, id, stopped, silence)
}

// TestAgentsOfACrashedProcessHoldTheClients: a process that dies without
// a word counts as gone once silent for three poll intervals; from when
// it was last heard of, its agents get the reconnect grace.
func TestAgentsOfACrashedProcessHoldTheClients(t *testing.T) {
	dsn := pgtest.DSN(t)
	fx := newFixture(t, func(t *testing.T, clock func() time.Time) store.Store { return openStore(t, dsn, clock) })
	o := fx.options()
	o.PollInterval, o.ReconnectGrace, o.AgentTimeout = time.Hour, 5*time.Hour, 100*time.Hour
	o.Store = openStore(t, dsn, fx.clock.Now)
	a := fx.serve(o, false)
	o.Store = crashingStore{openStore(t, dsn, fx.clock.Now)}
	b := fx.serve(o, false)
	fx.endpoint("ua-1", "berlin", store.RoleAgent)
	fx.endpoint("c-1", "berlin", store.RoleClient)
	agent, client := fx.listen(b, "ua-1"), fx.listen(a, "c-1")
	fx.connected(b, "ua-1")
	fx.connected(a, "c-1")
	fx.clock.Advance(6 * time.Hour) // past a's own grace
	fullPoll(a.hub)
	fullPoll(b.hub) // b last heard of now

	// b dies. Three poll intervals later a notifies; its agent is still
	// reconnecting.
	agent.stop()
	b.stop()
	b.srv.Close()
	fx.clock.Advance(3*time.Hour + time.Minute)
	id := fx.notify(a, Announcement{Versions: v2})
	fx.clock.Advance(time.Hour)
	fullPoll(a.hub)
	client.none(t)
	if fx.released(id) {
		t.Fatal("clients released while the agents of a crashed process may be reconnecting")
	}
	agent = fx.listen(a, "ua-1")
	agent.expect(t, id)
	fx.done(a, "ua-1", id, true)
	client.expect(t, id)
}
