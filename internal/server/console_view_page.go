package server

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

// viewRow is one endpoint of the registry view with what the endpoint
// list filters and sorts it by.
type viewRow struct {
	id, hostname string
	role         store.Role
	lastSeen     time.Time
	state        string // api.StateUpToDate, ...
	agent        string // the agent its list starts with ("": none)
}

// viewSorts are the endpoint list's sorts, each comparing two rows as
// store.QueryEndpoints orders them ascending: by the column, the id
// breaking ties. Both databases compare these columns byte by byte
// (PostgreSQL's are COLLATE "C"), as strings.Compare does.
var viewSorts = map[string]func(a, b *viewRow) int{
	"hostname":  func(a, b *viewRow) int { return strings.Compare(a.hostname, b.hostname) },
	"last_seen": func(a, b *viewRow) int { return a.lastSeen.Compare(b.lastSeen) },
	"role":      func(a, b *viewRow) int { return strings.Compare(string(a.role), string(b.role)) },
	"id":        func(a, b *viewRow) int { return 0 },
}

// viewRows builds the view's rows from the registry it classified and
// their order in each sort.
func viewRows(eps []store.Endpoint, states map[string]string, members map[string][]string) ([]viewRow, map[string][]int32) {
	rows := make([]viewRow, len(eps))
	at := make(map[string]int, len(eps))
	for i, e := range eps {
		rows[i] = viewRow{id: e.ID, hostname: e.Hostname, role: e.Role, lastSeen: e.LastSeen, state: states[e.ID]}
		at[e.ID] = i
	}
	for agent, ids := range members {
		for _, id := range ids {
			if i, ok := at[id]; ok {
				rows[i].agent = agent
			}
		}
	}
	orders := make(map[string][]int32, len(viewSorts))
	for name, by := range viewSorts {
		o := make([]int32, len(rows))
		for i := range o {
			o[i] = int32(i)
		}
		slices.SortFunc(o, func(a, b int32) int {
			ra, rb := &rows[a], &rows[b]
			return cmp.Or(by(ra, rb), strings.Compare(ra.id, rb.id))
		})
		orders[name] = o
	}
	return rows, orders
}

// viewLists is how many filtered orders a view keeps (viewList): one per
// combination of state, agent, role and sort asked for, up to this many.
const viewLists = 64

// viewListKey names a filtered order.
type viewListKey struct {
	state, agent, sort string
	role               store.Role
}

// viewList is the view's rows matching q's filters in q's sort,
// ascending: computed by walking the sort's order once, then kept with
// the view (every page of the filter reads it).
func (v *registryView) viewList(q console.ViewQuery, sort string, order []int32) []int32 {
	key := viewListKey{state: q.State, agent: q.Agent, sort: sort, role: q.Role}
	v.listsMu.Lock()
	l, ok := v.lists[key]
	v.listsMu.Unlock()
	if ok {
		return l
	}
	l = []int32{}
	for _, i := range order {
		r := &v.rows[i]
		if (q.State == "" || r.state == q.State) && (q.Agent == "" || r.agent == q.Agent) && (q.Role == "" || r.role == q.Role) {
			l = append(l, i)
		}
	}
	v.listsMu.Lock()
	defer v.listsMu.Unlock()
	if v.lists == nil {
		v.lists = map[viewListKey][]int32{}
	}
	if len(v.lists) < viewLists {
		v.lists[key] = l
	}
	return l
}

// page returns the ids of q's page of the view's endpoints and how many
// match q, without reading the database.
func (v *registryView) page(q console.ViewQuery) ([]string, int, error) {
	sort := cmp.Or(q.Sort, "hostname")
	order, ok := v.orders[sort]
	if !ok {
		return nil, 0, fmt.Errorf("page the endpoints: %w: sort %q (want hostname, last_seen, role or id)", store.ErrInvalid, q.Sort)
	}
	l := v.viewList(q, sort, order)
	ids := []string{}
	for k := max(q.Offset, 0); k < len(l) && (q.Limit <= 0 || len(ids) < q.Limit); k++ {
		i := k
		if q.Desc {
			i = len(l) - 1 - k
		}
		ids = append(ids, v.rows[l[i]].id)
	}
	return ids, len(l), nil
}

// EndpointPage implements console.Backend with the registry view.
func (b *consoleBackend) EndpointPage(ctx context.Context, q console.ViewQuery) ([]string, int, error) {
	view, err := b.s.view.get(ctx)
	if err != nil {
		return nil, 0, err
	}
	return view.page(q)
}
