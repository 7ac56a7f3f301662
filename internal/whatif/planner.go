// Package whatif answers the two questions an administrator asks before
// saving an edited update-source policy, using the decision engine
// (plan.For) and nothing beside it:
//
//   - Compare (the preview): the plan of one endpoint or set of addresses
//     under the edited policy beside its plan under the policy in force,
//     with the reason for every source and the positions that differ.
//   - Run (the what-if): with some sources marked down, where every
//     enrolled endpoint would end for each category, how many fall back to
//     the server or the origin or have no source at all, and the bytes the
//     server and the WAN would carry for the component versions deployed
//     now.
//
// Run is fast on large registries because a Planner calls plan.For once
// per group of endpoints whose addresses fall into the same elementary
// intervals of the policy's ranges (so they match the same entries), not
// once per endpoint.
package whatif

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/registry"
)

// Planner returns the plans of many endpoints under one policy and
// trigger, computing each distinct plan once.
//
// Every entry's range [From, To] contributes the boundaries From and
// To+1; between two consecutive boundaries every address is covered by
// exactly the same entries. Two endpoints of the same role whose
// addresses fall into the same set of such intervals therefore have the
// same effective list and, unless one is an agent the policy names (an
// agent never lists itself), the same plan.
type Planner struct {
	p      *policy.Policy
	t      plan.Trigger
	v4, v6 []netip.Addr     // sorted boundaries
	named  map[string]bool  // agent ids the policy names
	plans  map[string]*Plan // by group key
	key    []byte           // scratch
	ids    []uint64         // scratch
}

// Plan is a plan computed once for a group of endpoints.
type Plan struct {
	plan.Plan
	// Group is the index of the group, in order of first appearance.
	Group int
}

// NewPlanner returns a planner for p (validated) and trigger t.
func NewPlanner(p *policy.Policy, t plan.Trigger) *Planner {
	pl := &Planner{p: p, t: t, named: map[string]bool{}, plans: map[string]*Plan{}}
	for _, e := range p.CustomSources {
		if e.Src().Kind == policy.Agent {
			pl.named[e.Src().AgentID] = true
		}
	}
	pl.v4, pl.v6 = boundaries(p)
	return pl
}

// boundaries returns the sorted, distinct boundaries of the entries of
// the policies ps, per family: every entry's range [From, To] contributes
// From and To+1 (none past the family's last address). Between two
// consecutive boundaries every address is covered by exactly the same
// entries of each policy.
func boundaries(ps ...*policy.Policy) (v4, v6 []netip.Addr) {
	for _, p := range ps {
		if p == nil {
			continue
		}
		for _, e := range p.CustomSources {
			r := e.Range()
			b := &v6
			if r.From.Is4() {
				b = &v4
			}
			*b = append(*b, r.From)
			if n := r.To.Next(); n.IsValid() {
				*b = append(*b, n)
			}
		}
	}
	for _, b := range []*[]netip.Addr{&v4, &v6} {
		slices.SortFunc(*b, netip.Addr.Compare)
		*b = slices.Compact(*b)
	}
	return v4, v6
}

// interval returns the family and index of the elementary interval a
// falls in: the number of boundaries at or below a.
func (pl *Planner) interval(a netip.Addr) uint64 {
	a = registry.Normal(a)
	b, fam := pl.v6, uint64(1)<<32
	if a.Is4() {
		b, fam = pl.v4, 0
	}
	i, found := slices.BinarySearchFunc(b, a, netip.Addr.Compare)
	if found {
		i++
	}
	return fam | uint64(i)
}

// For returns the plan of e, computing it only for the first endpoint of
// its group. The plan's reasons name the addresses of that first
// endpoint; its sources are those of every endpoint of the group.
func (pl *Planner) For(e *registry.Endpoint) *Plan {
	ids := pl.ids[:0]
	for _, a := range e.Addresses {
		ids = append(ids, pl.interval(a))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	pl.ids = ids
	k := pl.key[:0]
	k = append(k, e.Role...)
	k = append(k, 0)
	if e.Role == plan.RoleAgent && pl.named[e.AgentID] {
		k = append(k, e.AgentID...)
	}
	k = append(k, 0)
	for _, id := range ids {
		k = binary.BigEndian.AppendUint64(k, id)
	}
	pl.key = k
	if p, ok := pl.plans[string(k)]; ok {
		return p
	}
	p := &Plan{Plan: plan.For(pl.p, plan.Endpoint{Role: e.Role, AgentID: e.AgentID, Addresses: e.Addresses}, pl.t), Group: len(pl.plans)}
	pl.plans[string(k)] = p
	return p
}

// Groups returns how many distinct plans the planner computed.
func (pl *Planner) Groups() int { return len(pl.plans) }
