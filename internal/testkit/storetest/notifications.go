package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

var announced = json.RawMessage(`{"components": {"pattern": "2"}}`)

// counts builds a DeliveryCounts result from the non-zero counts given.
func counts(agent, client map[store.DeliveryState]int) map[store.Role]map[store.DeliveryState]int {
	out := map[store.Role]map[store.DeliveryState]int{}
	for role, given := range map[store.Role]map[store.DeliveryState]int{store.RoleAgent: agent, store.RoleClient: client} {
		out[role] = map[store.DeliveryState]int{store.DeliveryPending: 0, store.DeliveryDelivered: 0,
			store.DeliveryDone: 0, store.DeliveryFailed: 0}
		for s, n := range given {
			out[role][s] = n
		}
	}
	return out
}

func testNotifications(e *env) {
	e.domain("d")
	ua := e.endpoint("d", "ua", "ua-1")
	c1 := e.endpoint("d", "c1", "")
	c2 := e.endpoint("d", "c2", "")
	revoked := e.endpoint("d", "old", "")
	e.must(e.st.RevokeEndpoint(e.ctx, revoked.ID))

	n, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced, Domain: "d", AgentsFirst: true},
		[]string{c1.ID, ua.ID, c2.ID, ua.ID, revoked.ID})
	e.must(err)
	e.equal("notification", n, store.Notification{ID: n.ID, Created: e.now(), Versions: announced, Domain: "d", AgentsFirst: true})
	got, err := e.st.Notification(e.ctx, n.ID)
	e.must(err)
	e.equal("stored notification", got, n)

	e.pendingIs(ua, n)
	e.pendingIs(c1) // held back until the agents have updated
	e.pendingIs(revoked)

	dels, err := e.st.Deliveries(e.ctx, n.ID, store.DeliveryFilter{Role: store.RoleClient})
	e.must(err)
	wantDels := []store.Delivery{
		{NotificationID: n.ID, EndpointID: c1.ID, Role: store.RoleClient, State: store.DeliveryPending},
		{NotificationID: n.ID, EndpointID: c2.ID, Role: store.RoleClient, State: store.DeliveryPending},
	}
	if c2.ID < c1.ID {
		wantDels[0], wantDels[1] = wantDels[1], wantDels[0]
	}
	e.equal("client deliveries", dels, wantDels)

	e.clock.Advance(time.Second)
	e.must(e.st.SetDeliveryState(e.ctx, n.ID, ua.ID, store.DeliveryDelivered, ""))
	e.pendingIs(ua)
	e.must(e.st.SetDeliveryState(e.ctx, n.ID, ua.ID, store.DeliveryDone, ""))
	cs, err := e.st.DeliveryCounts(e.ctx, n.ID)
	e.must(err)
	e.equal("counts", cs, counts(map[store.DeliveryState]int{store.DeliveryDone: 1},
		map[store.DeliveryState]int{store.DeliveryPending: 2}))

	e.clock.Advance(time.Second)
	released, err := e.st.ReleaseClients(e.ctx, n.ID)
	e.must(err)
	n.ClientsReleased = e.now()
	e.equal("released notification", released, n)
	e.clock.Advance(time.Second)
	released, err = e.st.ReleaseClients(e.ctx, n.ID)
	e.must(err)
	e.equal("released twice", released, n)
	e.pendingIs(c1, n)
}

// testNotificationsRefused: invalid or unknown arguments store nothing.
func testNotificationsRefused(e *env) {
	e.domain("d")
	ua := e.endpoint("d", "ua", "ua-1")
	_, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: json.RawMessage(`{`)}, nil)
	e.is(err, store.ErrInvalid)
	_, err = e.st.CreateNotification(e.ctx, store.Notification{Versions: announced}, []string{ua.ID, "ep_unknown"})
	e.is(err, store.ErrNotFound)
	none, err := e.st.ListNotifications(e.ctx, 0)
	e.must(err)
	e.equal("notifications after refused ones", none, []store.Notification{})
	e.pendingIs(ua)
	_, err = e.st.Notification(e.ctx, "ntf_unknown")
	e.is(err, store.ErrNotFound)
	_, err = e.st.DeliveryCounts(e.ctx, "ntf_unknown")
	e.is(err, store.ErrNotFound)
	_, err = e.st.ReleaseClients(e.ctx, "ntf_unknown")
	e.is(err, store.ErrNotFound)
}

// testReleaseClientsIf: the clients are released only when the agent
// deliveries allow it at the time of the release, once.
func testReleaseClientsIf(e *env) {
	e.domain("d")
	ua1 := e.endpoint("d", "ua1", "ua-1")
	ua2 := e.endpoint("d", "ua2", "ua-2")
	c := e.endpoint("d", "c", "")
	n, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced, AgentsFirst: true},
		[]string{ua1.ID, ua2.ID, c.ID})
	e.must(err)
	release := func(cond store.ReleaseCondition, want bool) store.Notification {
		e.t.Helper()
		got, released, err := e.st.ReleaseClientsIf(e.ctx, n.ID, cond)
		e.must(err)
		if released != want {
			e.t.Fatalf("condition %d released %v, want %v", cond, released, want)
		}
		return got
	}
	// ua1 got it and runs, ua2 is offline (pending).
	e.must(e.st.SetDeliveryState(e.ctx, n.ID, ua1.ID, store.DeliveryDelivered, ""))
	release(store.ReleaseAgentsFinished, false)
	release(store.ReleaseNoAgentRunning, false)
	e.pendingIs(c)
	// ua1 reported: the running agents are done, ua2 still pending.
	e.must(e.st.SetDeliveryState(e.ctx, n.ID, ua1.ID, store.DeliveryDone, ""))
	if got := release(store.ReleaseAgentsFinished, false); !got.ClientsReleased.IsZero() {
		e.t.Fatalf("released %v", got.ClientsReleased)
	}
	e.clock.Advance(time.Second)
	got := release(store.ReleaseNoAgentRunning, true)
	n.ClientsReleased = e.now()
	e.equal("released notification", got, n)
	e.pendingIs(c, n)
	// Released already: no condition releases it again, the time stays.
	e.clock.Advance(time.Second)
	for _, cond := range []store.ReleaseCondition{store.ReleaseAlways, store.ReleaseAgentsFinished, store.ReleaseNoAgentRunning} {
		e.equal("released again", release(cond, false), n)
	}

	// Every agent finished (one failed): released; a timeout releases
	// whatever the agents do.
	n2, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced, AgentsFirst: true},
		[]string{ua1.ID, ua2.ID, c.ID})
	e.must(err)
	n3, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced, AgentsFirst: true},
		[]string{ua1.ID, c.ID})
	e.must(err)
	e.must(e.st.SetDeliveryState(e.ctx, n2.ID, ua1.ID, store.DeliveryDone, ""))
	e.must(e.st.SetDeliveryState(e.ctx, n2.ID, ua2.ID, store.DeliveryFailed, "broken"))
	n = n2
	release(store.ReleaseAgentsFinished, true)
	e.must(e.st.SetDeliveryState(e.ctx, n3.ID, ua1.ID, store.DeliveryDelivered, ""))
	n = n3
	release(store.ReleaseAlways, true)

	_, _, err = e.st.ReleaseClientsIf(e.ctx, "ntf_unknown", store.ReleaseAlways)
	e.is(err, store.ErrNotFound)
	_, _, err = e.st.ReleaseClientsIf(e.ctx, n.ID, store.ReleaseCondition(99))
	e.is(err, store.ErrInvalid)
}

// testReleaseClientsOnce: of many concurrent releases, one releases.
func testReleaseClientsOnce(e *env) {
	e.domain("d")
	ua := e.endpoint("d", "ua", "ua-1")
	c := e.endpoint("d", "c", "")
	n, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced, AgentsFirst: true},
		[]string{ua.ID, c.ID})
	e.must(err)
	e.must(e.st.SetDeliveryState(e.ctx, n.ID, ua.ID, store.DeliveryDone, ""))
	const callers = 8
	results := make(chan error, callers)
	var mu sync.Mutex
	releases := 0
	for range callers {
		go func() {
			_, released, err := e.st.ReleaseClientsIf(e.ctx, n.ID, store.ReleaseAgentsFinished)
			if released {
				mu.Lock()
				releases++
				mu.Unlock()
			}
			results <- err
		}()
	}
	for range callers {
		e.must(<-results)
	}
	if releases != 1 {
		e.t.Fatalf("%d callers released the clients, want 1", releases)
	}
}

// testDeliveredAfter: the notifications delivered to an endpoint and not
// finished, after a given one.
func testDeliveredAfter(e *env) {
	e.domain("d")
	c := e.endpoint("d", "c", "")
	other := e.endpoint("d", "o", "")
	var ns []store.Notification
	for range 5 {
		n, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced}, []string{c.ID, other.ID})
		e.must(err)
		ns = append(ns, n)
		e.clock.Advance(time.Second)
	}
	for _, n := range ns[:4] {
		_, err := e.st.MarkDelivered(e.ctx, n.ID, []string{c.ID})
		e.must(err)
	}
	e.must(e.st.SetDeliveryState(e.ctx, ns[2].ID, c.ID, store.DeliveryDone, "")) // reported: received
	// ns[4] is pending (PendingNotifications), ns[2] finished.
	after := func(id string, limit int, want ...store.Notification) {
		e.t.Helper()
		got, err := e.st.DeliveredAfter(e.ctx, c.ID, id, limit)
		e.must(err)
		if want == nil {
			want = []store.Notification{}
		}
		e.equal("delivered after "+id, got, want)
	}
	after(ns[0].ID, 0, ns[1], ns[3])
	after(ns[1].ID, 0, ns[3])
	after(ns[3].ID, 0)
	after("ntf_unknown", 0, ns[0], ns[1], ns[3])
	after("ntf_unknown", 2, ns[1], ns[3])
	got, err := e.st.DeliveredAfter(e.ctx, other.ID, "", 0)
	e.must(err)
	e.equal("delivered to another endpoint", got, []store.Notification{})
}

// testBeatHub: a hub learns when another stopped or went silent.
func testBeatHub(e *env) {
	beat := func(id string, stopped bool, want time.Time) {
		e.t.Helper()
		got, err := e.st.BeatHub(e.ctx, id, stopped, time.Minute)
		e.must(err)
		e.equal("last hub gone, seen from "+id, got, want)
	}
	beat("a", false, time.Time{})
	beat("b", false, time.Time{})
	started := e.now()
	e.clock.Advance(30 * time.Second)
	beat("a", false, time.Time{}) // b silent for 30 s only
	e.clock.Advance(31 * time.Second)
	beat("a", false, started) // b silent for over a minute: gone when last heard of
	beat("b", false, time.Time{})
	e.clock.Advance(time.Second)
	stopped := e.now()
	beat("b", true, time.Time{})
	e.clock.Advance(time.Second)
	beat("a", false, stopped)
	beat("c", false, stopped) // a is alive, b stopped
	// a goes silent: the latest of a's silence and b's stop counts; a
	// day later both are forgotten.
	aSeen := stopped.Add(time.Second)
	e.clock.Advance(23 * time.Hour)
	beat("c", false, aSeen)
	e.clock.Advance(2 * time.Hour)
	beat("c", false, time.Time{})
	_, err := e.st.BeatHub(e.ctx, "", false, time.Minute)
	e.is(err, store.ErrInvalid)
}

// pendingIs fails the test unless ep's pending notifications are want.
func (e *env) pendingIs(ep store.Endpoint, want ...store.Notification) {
	e.t.Helper()
	got, err := e.st.PendingNotifications(e.ctx, ep.ID)
	e.must(err)
	if want == nil {
		want = []store.Notification{}
	}
	e.equal("pending notifications of "+ep.Hostname, got, want)
}

// testNotificationsOrder: notifications without agents-first are released
// at once, pending ones come oldest first, listing is newest first, and
// pruning removes old ones with their deliveries.
func testNotificationsOrder(e *env) {
	e.domain("d")
	c := e.endpoint("d", "c", "")
	n1, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced}, []string{c.ID})
	e.must(err)
	e.equal("released at creation", n1.ClientsReleased, n1.Created)
	e.clock.Advance(time.Second)
	n2, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced}, []string{c.ID})
	e.must(err)
	e.pendingIs(c, n1, n2)
	list, err := e.st.ListNotifications(e.ctx, 0)
	e.must(err)
	e.equal("notifications", list, []store.Notification{n2, n1})
	list, err = e.st.ListNotifications(e.ctx, 1)
	e.must(err)
	e.equal("latest notification", list, []store.Notification{n2})

	pruned, err := e.st.PruneNotifications(e.ctx, n2.Created)
	e.must(err)
	e.equal("pruned", pruned, int64(1))
	e.pendingIs(c, n2)
	dels, err := e.st.Deliveries(e.ctx, n1.ID, store.DeliveryFilter{})
	e.must(err)
	e.equal("deliveries of a pruned notification", dels, []store.Delivery{})
}

func testNotificationStates(e *env) {
	e.domain("d")
	a := e.endpoint("d", "a", "")
	b := e.endpoint("d", "b", "")
	c := e.endpoint("d", "c", "")
	n, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced}, []string{a.ID, b.ID, c.ID})
	e.must(err)
	set := func(ep store.Endpoint, s store.DeliveryState, detail string) error {
		return e.st.SetDeliveryState(e.ctx, n.ID, ep.ID, s, detail)
	}
	t0 := e.now()
	e.must(set(a, store.DeliveryDelivered, ""))
	e.clock.Advance(time.Second)
	e.must(set(a, store.DeliveryDelivered, "")) // again: no-op, keeps the time
	t1 := e.now()
	e.must(set(a, store.DeliveryFailed, "no source could update components"))
	e.is(set(a, store.DeliveryDone, ""), store.ErrConflict)
	e.is(set(a, store.DeliveryDelivered, ""), store.ErrConflict)
	e.must(set(a, store.DeliveryFailed, "again"))
	e.must(set(b, store.DeliveryDone, "")) // straight from pending
	e.is(set(b, store.DeliveryPending, ""), store.ErrInvalid)
	e.is(set(b, "lost", ""), store.ErrInvalid)
	e.is(e.st.SetDeliveryState(e.ctx, n.ID, "ep_unknown", store.DeliveryDone, ""), store.ErrNotFound)
	e.is(e.st.SetDeliveryState(e.ctx, "ntf_unknown", a.ID, store.DeliveryDone, ""), store.ErrNotFound)

	got, err := e.st.Deliveries(e.ctx, n.ID, store.DeliveryFilter{State: store.DeliveryFailed})
	e.must(err)
	e.equal("failed deliveries", got, []store.Delivery{{NotificationID: n.ID, EndpointID: a.ID, Role: store.RoleClient,
		State: store.DeliveryFailed, Delivered: t0, Finished: t1, Detail: "no source could update components"}})
	got, err = e.st.Deliveries(e.ctx, n.ID, store.DeliveryFilter{State: store.DeliveryDone})
	e.must(err)
	e.equal("done deliveries", got, []store.Delivery{{NotificationID: n.ID, EndpointID: b.ID, Role: store.RoleClient,
		State: store.DeliveryDone, Finished: t1}})
	cs, err := e.st.DeliveryCounts(e.ctx, n.ID)
	e.must(err)
	e.equal("counts", cs, counts(nil, map[store.DeliveryState]int{
		store.DeliveryPending: 1, store.DeliveryDone: 1, store.DeliveryFailed: 1}))
}

// testNotificationsRevoke: revoking an endpoint fails its outstanding
// deliveries; the role recorded at creation stays.
func testNotificationsRevoke(e *env) {
	e.domain("d")
	ua := e.endpoint("d", "ua", "ua-1")
	c := e.endpoint("d", "c", "")
	n, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced, AgentsFirst: true}, []string{ua.ID, c.ID})
	e.must(err)
	_, err = e.st.SetEndpointRole(e.ctx, ua.ID, store.RoleClient, "")
	e.must(err)
	pending, err := e.st.PendingNotifications(e.ctx, ua.ID)
	e.must(err)
	e.equal("pending for a former agent", pending, []store.Notification{n})

	e.must(e.st.SetDeliveryState(e.ctx, n.ID, ua.ID, store.DeliveryDelivered, ""))
	e.clock.Advance(time.Second)
	e.must(e.st.RevokeEndpoint(e.ctx, ua.ID))
	e.must(e.st.RevokeEndpoint(e.ctx, c.ID))
	cs, err := e.st.DeliveryCounts(e.ctx, n.ID)
	e.must(err)
	e.equal("counts after revocations", cs, counts(map[store.DeliveryState]int{store.DeliveryFailed: 1},
		map[store.DeliveryState]int{store.DeliveryFailed: 1}))
	got, err := e.st.Deliveries(e.ctx, n.ID, store.DeliveryFilter{Role: store.RoleAgent})
	e.must(err)
	e.equal("detail", got[0].Detail, "endpoint revoked")
	e.equal("finished", got[0].Finished, e.now())
}

// testMarkDelivered: only pending deliveries of the notification move,
// in any number, with the time; unknown endpoints are ignored.
func testMarkDelivered(e *env) {
	e.domain("d")
	var ids []string
	var first store.Endpoint
	for i := range 1200 { // more than one chunk of the IN list
		ep := e.endpoint("d", fmt.Sprintf("c%d", i), "")
		if i == 0 {
			first = ep
		}
		ids = append(ids, ep.ID)
	}
	n, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced}, ids)
	e.must(err)
	other, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced}, ids[:1])
	e.must(err)
	e.must(e.st.SetDeliveryState(e.ctx, n.ID, ids[0], store.DeliveryDone, ""))
	e.clock.Advance(time.Second)
	moved, err := e.st.MarkDelivered(e.ctx, n.ID, append(ids[:1100:1100], "ep_unknown"))
	e.must(err)
	e.equal("moved", moved, int64(1099))
	cs, err := e.st.DeliveryCounts(e.ctx, n.ID)
	e.must(err)
	e.equal("counts", cs, counts(nil, map[store.DeliveryState]int{
		store.DeliveryDone: 1, store.DeliveryDelivered: 1099, store.DeliveryPending: 100}))
	got, err := e.st.Deliveries(e.ctx, n.ID, store.DeliveryFilter{State: store.DeliveryDelivered})
	e.must(err)
	e.equal("delivered at", got[0].Delivered, e.now())
	e.pendingIs(first, other) // the other notification is untouched
	moved, err = e.st.MarkDelivered(e.ctx, n.ID, ids[1:3])
	e.must(err)
	e.equal("moved again", moved, int64(0))
	moved, err = e.st.MarkDelivered(e.ctx, "ntf_unknown", ids)
	e.must(err)
	e.equal("unknown notification", moved, int64(0))
}
