package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// testDomainNotifications: CreateDomainNotification makes a delivery for
// every endpoint of the domain (of every domain) that is not revoked,
// with its role, keeps agents first only when one of them is an agent,
// and stores nothing when the versions are invalid.
func testDomainNotifications(e *env) {
	e.domain("d")
	e.domain("other")
	ua := e.endpoint("d", "ua", "ua-1")
	c := e.endpoint("d", "c", "")
	revoked := e.endpoint("d", "old", "")
	e.must(e.st.RevokeEndpoint(e.ctx, revoked.ID))
	oc := e.endpoint("other", "oc", "")

	deliveries := func(n store.Notification, want ...store.Delivery) {
		e.t.Helper()
		got, err := e.st.Deliveries(e.ctx, n.ID, store.DeliveryFilter{})
		e.must(err)
		for i := range want {
			want[i].NotificationID, want[i].State = n.ID, store.DeliveryPending
		}
		// Deliveries are ordered by endpoint id.
		for i := 1; i < len(want); i++ {
			for j := i; j > 0 && want[j].EndpointID < want[j-1].EndpointID; j-- {
				want[j], want[j-1] = want[j-1], want[j]
			}
		}
		e.equal("deliveries", got, want)
	}

	n, total, err := e.st.CreateDomainNotification(e.ctx, store.Notification{Versions: announced, Domain: "d", AgentsFirst: true})
	e.must(err)
	e.equal("notification", n, store.Notification{ID: n.ID, Created: e.now(), Versions: announced, Domain: "d", AgentsFirst: true})
	e.equal("deliveries made", total, 2)
	got, err := e.st.Notification(e.ctx, n.ID)
	e.must(err)
	e.equal("stored notification", got, n)
	deliveries(n, store.Delivery{EndpointID: ua.ID, Role: store.RoleAgent}, store.Delivery{EndpointID: c.ID, Role: store.RoleClient})
	e.pendingIs(ua, n)
	e.pendingIs(c) // held back behind the agent
	e.pendingIs(oc)

	// No agent in the domain: agents first is dropped, the clients are
	// released at once.
	n2, total, err := e.st.CreateDomainNotification(e.ctx, store.Notification{Versions: announced, Domain: "other", AgentsFirst: true})
	e.must(err)
	e.equal("notification without agents", n2, store.Notification{ID: n2.ID, Created: e.now(), Versions: announced,
		Domain: "other", ClientsReleased: e.now()})
	e.equal("deliveries made", total, 1)
	got, err = e.st.Notification(e.ctx, n2.ID)
	e.must(err)
	e.equal("stored notification without agents", got, n2)
	e.pendingIs(oc, n2)

	// Every domain.
	n3, total, err := e.st.CreateDomainNotification(e.ctx, store.Notification{Versions: announced, AgentsFirst: true})
	e.must(err)
	e.equal("deliveries made for every domain", total, 3)
	deliveries(n3, store.Delivery{EndpointID: ua.ID, Role: store.RoleAgent}, store.Delivery{EndpointID: c.ID, Role: store.RoleClient},
		store.Delivery{EndpointID: oc.ID, Role: store.RoleClient})
	e.pendingIs(revoked)

	// Refused: nothing stored.
	_, _, err = e.st.CreateDomainNotification(e.ctx, store.Notification{Versions: json.RawMessage(`{`), Domain: "d"})
	e.is(err, store.ErrInvalid)
	list, err := e.st.ListNotifications(e.ctx, 0)
	e.must(err)
	e.equal("notifications", len(list), 3)
}

// testPendingNotificationsOf: the pending notifications of many
// endpoints at once are each endpoint's PendingNotifications, every
// endpoint asked for present, across more endpoints than one query's
// chunk.
func testPendingNotificationsOf(e *env) {
	e.domain("d")
	ua := e.endpoint("d", "ua", "ua-1")
	c := e.endpoint("d", "c", "")
	idle := e.endpoint("d", "idle", "")
	held, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced, AgentsFirst: true}, []string{ua.ID, c.ID})
	e.must(err)
	e.clock.Advance(time.Second)
	all, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced}, []string{ua.ID, c.ID})
	e.must(err)
	e.clock.Advance(time.Second)
	sent, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced}, []string{c.ID})
	e.must(err)
	_, err = e.st.MarkDelivered(e.ctx, sent.ID, []string{c.ID})
	e.must(err)

	ids := []string{ua.ID, c.ID, idle.ID, "ep_unknown"}
	for i := range 1200 { // more than one chunk of ids
		ids = append(ids, fmt.Sprintf("ep_none%04d", i))
	}
	got, err := e.st.PendingNotificationsOf(e.ctx, ids)
	e.must(err)
	if len(got) != len(ids) {
		e.t.Fatalf("%d endpoints in the answer, want %d", len(got), len(ids))
	}
	e.equal("pending of the agent", got[ua.ID], []store.Notification{held, all})
	e.equal("pending of the client", got[c.ID], []store.Notification{all})
	e.equal("pending of an idle endpoint", got[idle.ID], []store.Notification{})
	e.equal("pending of an unknown endpoint", got["ep_unknown"], []store.Notification{})
	for _, ep := range []store.Endpoint{ua, c, idle} {
		one, err := e.st.PendingNotifications(e.ctx, ep.ID)
		e.must(err)
		e.equal("PendingNotifications of "+ep.Hostname, got[ep.ID], one)
	}
	none, err := e.st.PendingNotificationsOf(e.ctx, nil)
	e.must(err)
	e.equal("no endpoints", none, map[string][]store.Notification{})
}

// testPendingEndpoints: the endpoints whose delivery of a notification
// is pending, by role.
func testPendingEndpoints(e *env) {
	e.domain("d")
	ua := e.endpoint("d", "ua", "ua-1")
	ua2 := e.endpoint("d", "ua2", "ua-2")
	c := e.endpoint("d", "c", "")
	c2 := e.endpoint("d", "c2", "")
	n, _, err := e.st.CreateDomainNotification(e.ctx, store.Notification{Versions: announced, Domain: "d", AgentsFirst: true})
	e.must(err)
	_, err = e.st.MarkDelivered(e.ctx, n.ID, []string{ua2.ID, c2.ID})
	e.must(err)
	e.must(e.st.SetDeliveryState(e.ctx, n.ID, ua.ID, store.DeliveryDone, ""))
	pending := func(role store.Role, want ...string) {
		e.t.Helper()
		got, err := e.st.PendingEndpoints(e.ctx, n.ID, role)
		e.must(err)
		slices.Sort(got)
		slices.Sort(want)
		if want == nil {
			want = []string{}
		}
		e.equal("pending endpoints of role "+string(role), got, want)
	}
	pending(store.RoleAgent)
	pending(store.RoleClient, c.ID)
	e.must(e.st.SetDeliveryState(e.ctx, n.ID, c2.ID, store.DeliveryDone, ""))
	n2, err := e.st.CreateNotification(e.ctx, store.Notification{Versions: announced}, []string{ua.ID, c.ID})
	e.must(err)
	n = n2
	pending("", ua.ID, c.ID)
	pending(store.RoleAgent, ua.ID)
	got, err := e.st.PendingEndpoints(e.ctx, "ntf_unknown", "")
	e.must(err)
	e.equal("pending endpoints of an unknown notification", got, []string{})
}
