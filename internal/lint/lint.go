// Package lint finds what is legal in an update-source policy but most
// likely a mistake, given the server's endpoint registry: warnings, not
// errors (docs/policy.md, Warnings). A policy is valid or not by
// policy.Validate alone; Check only advises.
//
// Check takes plain inputs (a validated policy and a registry.Snapshot) so
// that every warning kind can be tested without a database; the server's
// GET and POST /api/v1/policy/lint and `cascade server policy lint` call it.
package lint

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/registry"
)

// Kind names what a warning is about.
type Kind string

// The warning kinds.
const (
	// UnknownAgent: an entry names an agent no enrolled endpoint is.
	UnknownAgent Kind = "unknown_agent"
	// RevokedAgent: an entry names an agent whose endpoint is revoked.
	RevokedAgent Kind = "revoked_agent"
	// AgentFamily: an entry's agent has no address of the entry's family.
	AgentFamily Kind = "agent_family"
	// CoversNothing: an entry's range holds no enrolled endpoint.
	CoversNothing Kind = "covers_nothing"
	// Unreachable: earlier entries with the same source cover the entry's
	// whole range, so it is dropped from every effective list.
	Unreachable Kind = "unreachable"
	// UnusedAgent: an update agent that no entry names.
	UnusedAgent Kind = "unused_agent"
)

// Warning is one piece of advice about a policy.
type Warning struct {
	Kind Kind `json:"kind"`
	// Entry is the 1-based custom_sources entry concerned, 0 for a warning
	// about an agent (UnusedAgent).
	Entry int `json:"entry,omitempty"`
	// Agent is the agent id concerned, if any.
	Agent string `json:"agent,omitempty"`
	// Message says what is wrong and what to do, in one line.
	Message string `json:"message"`
}

func (w Warning) String() string { return w.Message }

// Check returns the warnings of p (validated) against the registry reg,
// ordered by entry, then the agents no entry names by agent id.
func Check(p *policy.Policy, reg *registry.Snapshot) []Warning {
	c := newChecker(reg)
	var out []Warning
	named := map[string]bool{}
	for i, e := range p.CustomSources {
		n := i + 1
		src := e.Src()
		if src.Kind == policy.Agent {
			named[src.AgentID] = true
			out = append(out, c.agent(n, e)...)
		}
		if w, ok := unreachable(p, i); ok {
			out = append(out, w)
			continue // covering nothing follows from it; one warning is enough
		}
		if !c.coversAny(e.Range()) {
			out = append(out, Warning{Kind: CoversNothing, Entry: n, Message: fmt.Sprintf(
				"%s: no enrolled endpoint has an address in %s: check the range, or remove the entry if those endpoints are gone",
				entryName(n, e), e.Range())})
		}
	}
	var unused []string
	for id := range c.agents {
		if !named[id] {
			unused = append(unused, id)
		}
	}
	slices.Sort(unused)
	also := ""
	if p.Clients.Source == policy.Standard && p.Agents.Source == policy.Standard {
		also = " and set clients.source to customized (with clients.source and agents.source standard no endpoint reads the list)"
	}
	for _, id := range unused {
		a := c.agents[id]
		out = append(out, Warning{Kind: UnusedAgent, Agent: id, Message: fmt.Sprintf(
			"update agent %s (endpoint %s) is named by no entry, so no endpoint updates from it: add an entry with source agent:%s for the addresses it should serve%s, or make it a client (cascade server endpoint role %s --client)",
			id, hostOf(a), id, also, a.ID)})
	}
	return out
}

func entryName(n int, e policy.Entry) string {
	return fmt.Sprintf("custom_sources entry %d (%s %s)", n, e.Addresses, e.Source)
}

func hostOf(e *registry.Endpoint) string {
	if e.Hostname != "" {
		return e.Hostname
	}
	return e.ID
}

type checker struct {
	agents  map[string]*registry.Endpoint // non-revoked agents by agent id
	revoked map[string]*registry.Endpoint // revoked agents by agent id
	v4, v6  []netip.Addr                  // addresses of non-revoked endpoints, sorted
}

func newChecker(reg *registry.Snapshot) *checker {
	c := &checker{agents: reg.Agents(), revoked: map[string]*registry.Endpoint{}}
	for i := range reg.Endpoints {
		e := &reg.Endpoints[i]
		if e.Revoked {
			if e.AgentID != "" {
				c.revoked[e.AgentID] = e
			}
			continue
		}
		for _, a := range e.Addresses {
			a = registry.Normal(a)
			if a.Is4() {
				c.v4 = append(c.v4, a)
			} else {
				c.v6 = append(c.v6, a)
			}
		}
	}
	slices.SortFunc(c.v4, netip.Addr.Compare)
	slices.SortFunc(c.v6, netip.Addr.Compare)
	return c
}

// coversAny reports whether some enrolled endpoint has an address in r.
func (c *checker) coversAny(r policy.Range) bool {
	addrs := c.v6
	if r.From.Is4() {
		addrs = c.v4
	}
	i, _ := slices.BinarySearchFunc(addrs, r.From, netip.Addr.Compare)
	return i < len(addrs) && addrs[i].Compare(r.To) <= 0
}

// agent returns the warnings of an agent entry: unknown or revoked agent,
// or an agent without an address of the entry's family.
func (c *checker) agent(n int, e policy.Entry) []Warning {
	id := e.Src().AgentID
	a, ok := c.agents[id]
	if !ok {
		if r, ok := c.revoked[id]; ok {
			return []Warning{{Kind: RevokedAgent, Entry: n, Agent: id, Message: fmt.Sprintf(
				"%s: agent %s (endpoint %s) is revoked, so the endpoints this entry covers skip it: name another agent, or remove the entry",
				entryName(n, e), id, hostOf(r))}}
		}
		return []Warning{{Kind: UnknownAgent, Entry: n, Agent: id, Message: fmt.Sprintf(
			"%s: no enrolled update agent has the id %s, so the endpoints this entry covers skip it: enroll it with a token created with --agents, designate an endpoint (cascade server endpoint role ID --agent %s), or correct the id",
			entryName(n, e), id, id)}}
	}
	v4 := e.Range().From.Is4()
	for _, ad := range a.Addresses {
		if registry.Normal(ad).Is4() == v4 {
			return nil
		}
	}
	fam, kind := "IPv6", "an IPv6 prefix or range"
	if v4 {
		fam, kind = "IPv4", "an IPv4 range"
	}
	return []Warning{{Kind: AgentFamily, Entry: n, Agent: id, Message: fmt.Sprintf(
		"%s: agent %s (endpoint %s) has no %s address, and %s needs an agent with one: give the agent an %s address, or name an agent that has one",
		entryName(n, e), id, hostOf(a), fam, kind, fam)}}
}

// unreachable reports whether entry i is dropped from every effective
// list: the union of the earlier entries with the same source covers its
// whole range.
func unreachable(p *policy.Policy, i int) (Warning, bool) {
	e := p.CustomSources[i]
	r := e.Range()
	var earlier []policy.Range
	var which []int
	for j, f := range p.CustomSources[:i] {
		if f.Key() != e.Key() {
			continue
		}
		fr := f.Range()
		if fr.From.Is4() != r.From.Is4() || fr.To.Less(r.From) || r.To.Less(fr.From) {
			continue
		}
		earlier = append(earlier, fr)
		which = append(which, j+1)
	}
	if len(earlier) == 0 || !covers(earlier, r) {
		return Warning{}, false
	}
	return Warning{Kind: Unreachable, Entry: i + 1, Message: fmt.Sprintf(
		"%s is never used: %s with the same source already cover %s, so every endpoint it covers has that source earlier in its list: remove it (no endpoint's plan changes), or correct its range or source",
		entryName(i+1, e), entries(which), r)}, true
}

// covers reports whether the union of rs (all of r's family) holds every
// address of r.
func covers(rs []policy.Range, r policy.Range) bool {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b policy.Range) int { return a.From.Compare(b.From) })
	next := r.From // the lowest address of r not yet covered
	for _, x := range rs {
		if next.Less(x.From) {
			return false // a gap before x
		}
		if !x.To.Less(next) {
			if !x.To.Less(r.To) {
				return true
			}
			next = x.To.Next()
		}
	}
	return false
}

func entries(ns []int) string {
	if len(ns) == 1 {
		return fmt.Sprintf("entry %d", ns[0])
	}
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return "entries " + strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
