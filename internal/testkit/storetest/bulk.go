package storetest

import (
	"fmt"

	"github.com/cascade-update/cascade/internal/store"
)

// testCreateEndpoints: CreateEndpoints registers every endpoint as
// CreateEndpoint does, in one transaction: one invalid or conflicting
// endpoint creates none.
func testCreateEndpoints(e *env) {
	e.domain("d")
	es := make([]store.Endpoint, 600) // more than one bulk statement
	for i := range es {
		es[i] = store.Endpoint{Hostname: fmt.Sprintf("pc-%03d", i), Domain: "d", Addresses: []string{fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)},
			CredentialHash: store.HashSecret(fmt.Sprint("credential ", i))}
	}
	es[7].Role, es[7].AgentID = store.RoleAgent, "ua-7"
	e.must(e.st.CreateEndpoints(e.ctx, es))
	for _, i := range []int{0, 7, 599} {
		got, err := e.st.Endpoint(e.ctx, es[i].ID)
		e.must(err)
		e.equal(fmt.Sprint("endpoint ", i), got, es[i])
		if es[i].ID == "" || !got.Enrolled.Equal(e.now()) || !got.LastSeen.Equal(e.now()) || got.Role == "" {
			e.t.Fatalf("endpoint %d: %+v: want an id, Enrolled and LastSeen now, a role", i, got)
		}
	}
	all, err := e.st.ListEndpoints(e.ctx, store.EndpointFilter{})
	e.must(err)
	if len(all) != len(es) {
		e.t.Fatalf("%d endpoints, want %d", len(all), len(es))
	}
	// A credential already in use: none of the batch is created.
	more := []store.Endpoint{
		{Hostname: "new-1", Domain: "d", CredentialHash: store.HashSecret("new credential")},
		{Hostname: "new-2", Domain: "d", CredentialHash: es[3].CredentialHash},
	}
	e.is(e.st.CreateEndpoints(e.ctx, more), store.ErrConflict)
	bad := []store.Endpoint{{Hostname: "new-3", Domain: "d", CredentialHash: store.HashSecret("c3")}, {Hostname: "", Domain: "d"}}
	e.is(e.st.CreateEndpoints(e.ctx, bad), store.ErrInvalid)
	all, err = e.st.ListEndpoints(e.ctx, store.EndpointFilter{})
	e.must(err)
	if len(all) != len(es) {
		e.t.Fatalf("%d endpoints after refused batches, want %d", len(all), len(es))
	}
}

// testQueryManyIDs: an IDs filter may hold more ids than a statement may
// have parameters.
func testQueryManyIDs(e *env) {
	e.domain("d")
	a := e.endpoint("d", "alpha", "", "10.0.0.1")
	ids := make([]string, 70000)
	for i := range ids {
		ids[i] = fmt.Sprintf("ep_unknown%d", i)
	}
	ids[len(ids)/2] = a.ID
	rows, total, err := e.st.QueryEndpoints(e.ctx, store.EndpointQuery{IDs: ids, Limit: 10})
	e.must(err)
	if total != 1 || len(rows) != 1 || rows[0].ID != a.ID {
		e.t.Fatalf("query by %d ids: %d rows, total %d; want alpha only", len(ids), len(rows), total)
	}
}
