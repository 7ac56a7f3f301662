package server

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// TestViewPageOrdersAsTheStore: a page of the endpoint list paged from
// the registry view (filtered by state, agent and role) holds the same
// endpoints in the same order, with the same total, as the store's query
// of the classification's ids gives, for every sort, both directions and
// several pages, on both databases: hostnames tie, differ only in case
// or outside ASCII, endpoints are last seen at the same time.
func TestViewPageOrdersAsTheStore(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(t testing.TB) string
	}{
		{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "db.sqlite") }},
		{"postgres", pgtest.DSN},
	} {
		t.Run(db.name, func(t *testing.T) {
			ctx := context.Background()
			clock := testkit.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			st, err := store.Open(ctx, db.dsn(t), store.Options{Clock: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.CreateDomain(ctx, "default"); err != nil {
				t.Fatal(err)
			}
			hosts := []string{"b", "B", "a", "é", "a-1", "Zeta", "b", "a"}
			statesOf := []string{api.StateUpToDate, api.StateBehind, api.StateFailing, api.StateNoReport}
			agents := []string{"ua-1", "ua-2", ""}
			states, members := map[string]string{}, map[string][]string{}
			for i := range 60 {
				_, h, _ := store.NewSecret("")
				e := store.Endpoint{Hostname: hosts[i%len(hosts)], Domain: "default", Role: store.RoleClient, CredentialHash: h}
				if i%9 == 0 {
					e.Role, e.AgentID = store.RoleAgent, fmt.Sprintf("agent-%d", i)
				}
				if e, err = st.CreateEndpoint(ctx, e); err != nil {
					t.Fatal(err)
				}
				states[e.ID] = statesOf[(i*7)%len(statesOf)]
				if a := agents[(i*5)%len(agents)]; a != "" {
					members[a] = append(members[a], e.ID)
				}
				if i%3 == 2 {
					clock.Advance(time.Second)
				}
			}
			eps, err := st.ListEndpoints(ctx, store.EndpointFilter{})
			if err != nil {
				t.Fatal(err)
			}
			v := &registryView{states: states, members: members}
			v.rows, v.orders = viewRows(eps, states, members)
			for _, sort := range []string{"", "hostname", "last_seen", "role", "id"} {
				for _, desc := range []bool{false, true} {
					for _, q := range []console.ViewQuery{{State: api.StateBehind}, {State: api.StateFailing, Role: store.RoleAgent},
						{Agent: "ua-1"}, {Agent: "ua-2", State: api.StateUpToDate}, {State: api.StateNoReport, Role: store.RoleClient}, {Agent: "none"}} {
						for _, pg := range [][2]int{{0, 0}, {0, 4}, {4, 4}, {50, 4}} {
							q.Sort, q.Desc, q.Offset, q.Limit = sort, desc, pg[0], pg[1]
							ids, total, err := v.page(q)
							if err != nil {
								t.Fatal(err)
							}
							want := store.EndpointQuery{IDs: []string{}, Role: q.Role, Sort: sort, Desc: desc, Offset: q.Offset, Limit: q.Limit}
							for id, s := range states {
								if (q.State == "" || s == q.State) && (q.Agent == "" || slices.Contains(members[q.Agent], id)) {
									want.IDs = append(want.IDs, id)
								}
							}
							rows, wantTotal, err := st.QueryEndpoints(ctx, want)
							if err != nil {
								t.Fatal(err)
							}
							wantIDs := []string{}
							for _, r := range rows {
								wantIDs = append(wantIDs, r.ID)
							}
							if total != wantTotal || !slices.Equal(ids, wantIDs) {
								t.Fatalf("%+v: view page %v of %d, the store's %v of %d", q, ids, total, wantIDs, wantTotal)
							}
						}
					}
				}
			}
			if _, _, err := v.page(console.ViewQuery{Sort: "password"}); err == nil {
				t.Fatal("sort by password: no error")
			}
		})
	}
}
