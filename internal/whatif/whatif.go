package whatif

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/registry"
)

// Down is the set of sources marked down.
type Down struct {
	Server bool
	Origin bool
	// Agents are agent ids.
	Agents []string
	// URLs are mirror URLs, compared as the effective list compares them
	// (policy.SameURL).
	URLs []string
}

// ParseDown reads sources as `cascade explain --json` writes them:
// "server", "origin", "agent:ID" or an absolute http(s) URL.
func ParseDown(ss []string) (Down, error) {
	var d Down
	for _, s := range ss {
		var src policy.Source
		if err := src.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
			return Down{}, fmt.Errorf("down source %q: want server, origin, agent:ID or an http(s) URL", s)
		}
		switch src.Kind {
		case policy.Server:
			d.Server = true
		case policy.Origin:
			d.Origin = true
		case policy.Agent:
			d.Agents = append(d.Agents, src.AgentID)
		case policy.URL:
			d.URLs = append(d.URLs, src.URL)
		}
	}
	return d, nil
}

// Component is a component version deployed now.
type Component struct {
	Version string `json:"version"`
	// Bytes is the total length of the version's files in the mirrored
	// vendor repository.
	Bytes int64 `json:"bytes"`
}

// Input is what Run needs.
type Input struct {
	Policy   *policy.Policy // validated
	Registry *registry.Snapshot
	Trigger  plan.Trigger // "" is plan.DefaultTrigger
	Down     Down
	// Deployed are the component versions deployed now, by name.
	Deployed map[string]Component
}

// Result is the outcome of a what-if.
type Result struct {
	Trigger plan.Trigger `json:"trigger"`
	// Endpoints counts the enrolled (not revoked) endpoints.
	Endpoints int `json:"endpoints"`
	// Down are the sources marked down, as given.
	Down []string `json:"down"`
	// Unavailable are the agents the policy names that endpoints cannot
	// reach whatever is marked down: no enrolled agent has the id (never
	// enrolled, revoked, or now a client), or it has not reported the URL
	// it serves at (the agent directory leaves it out).
	Unavailable []string `json:"unavailable,omitempty"`
	// Starved are the agents that are up but would themselves end at no
	// source for components while lacking a deployed version: they
	// cannot serve it, so for components their clients move on past
	// them (worked out to a fixed point: an agent that updates only from
	// starved agents is starved too).
	Starved []string `json:"starved,omitempty"`
	// Categories says, per category the trigger updates, where endpoints
	// would end.
	Categories map[category.Category]*CategoryResult `json:"categories"`
	// Groups are the endpoints grouped by role and the source they would
	// end at for each category, largest first.
	Groups []Group `json:"groups"`
	// Bytes is what each party would carry to bring every endpoint to the
	// deployed component versions.
	Bytes Bytes `json:"bytes"`
	// Deployed are the component versions the bytes are computed for.
	Deployed map[string]Component `json:"deployed"`
	// Plans is how many distinct plans were computed (plan.For calls).
	Plans int `json:"plans"`
}

// CategoryResult counts where endpoints would end for one category.
type CategoryResult struct {
	// Sources are the sources endpoints would end at, most endpoints
	// first.
	Sources []SourceCount `json:"sources"`
	// Server and Origin count the endpoints that would end at the server
	// and at the origin; Quit those left with no source (the category
	// quits).
	Server int `json:"server"`
	Origin int `json:"origin"`
	Quit   int `json:"quit"`
	// FellBack counts the endpoints that would end at a source other than
	// the first of their plan (those that quit are counted in Quit only).
	FellBack int `json:"fell_back"`
}

// SourceCount is how many endpoints would end at one source.
type SourceCount struct {
	Source    string `json:"source"`
	Endpoints int    `json:"endpoints"`
	Agents    int    `json:"agents"`
	Clients   int    `json:"clients"`
	// Bytes (components only) the source would serve.
	Bytes int64 `json:"bytes,omitempty"`
}

// Group is a set of endpoints of one role that would end at the same
// sources. A category that would quit is "none"; one the trigger does not
// update is absent.
type Group struct {
	Role      plan.Role                    `json:"role"`
	EndAt     map[category.Category]string `json:"end_at"`
	Endpoints int                          `json:"endpoints"`
	// NeedUpdate counts the endpoints not at every deployed component
	// version; Bytes is what they would download.
	NeedUpdate int   `json:"need_update"`
	Bytes      int64 `json:"bytes"`
	// Examples names up to five of the endpoints (hostnames).
	Examples []string `json:"examples"`
}

// Bytes is what each kind of source would carry (components).
type Bytes struct {
	// Server is what the management server would serve.
	Server int64 `json:"server"`
	// WAN is what the origin would serve over the WAN.
	WAN    int64 `json:"wan"`
	Agents int64 `json:"agents"`
	URLs   int64 `json:"urls"`
	// Stranded is what endpoints left with no source would still need.
	Stranded int64 `json:"stranded"`
}

// None is the end of a category that no source can update.
const None = "none"

// Run computes the what-if of in.
func Run(in Input) *Result {
	t := cmp.Or(in.Trigger, plan.DefaultTrigger)
	res := &Result{Trigger: t, Down: in.Down.strings(), Categories: map[category.Category]*CategoryResult{}, Groups: []Group{}, Deployed: in.Deployed}
	if res.Deployed == nil {
		res.Deployed = map[string]Component{}
	}
	cats := t.Categories()
	agents := in.Registry.Agents()
	down := in.Down.set(in.Policy)
	for _, e := range in.Policy.CustomSources {
		id := e.Src().AgentID
		if e.Src().Kind == policy.Agent && (agents[id] == nil || agents[id].AgentURL == "") && !down.agents[id] {
			down.agents[id] = true
			res.Unavailable = append(res.Unavailable, id)
		}
	}
	pl := NewPlanner(in.Policy, t)
	if slices.Contains(cats, category.Components) {
		res.Starved = in.starve(pl, agents, down)
	}
	// groupEnds[g] are the ends of plan group g, computed once.
	type ends struct {
		at    [3]string
		first [3]bool // ended at the plan's first source
	}
	var groupEnds []*ends
	type gkey struct {
		role plan.Role
		at   [3]string
	}
	groups := map[gkey]*Group{}
	sources := make([]map[string]*SourceCount, len(cats))
	for i, c := range cats {
		res.Categories[c] = &CategoryResult{Sources: []SourceCount{}}
		sources[i] = map[string]*SourceCount{}
	}
	for i := range in.Registry.Endpoints {
		e := &in.Registry.Endpoints[i]
		if e.Revoked {
			continue
		}
		res.Endpoints++
		p := pl.For(e)
		for len(groupEnds) <= p.Group {
			groupEnds = append(groupEnds, nil)
		}
		if groupEnds[p.Group] == nil {
			var en ends
			for ci, c := range cats {
				en.at[ci], en.first[ci] = endOf(p.Categories[c], down, c)
			}
			groupEnds[p.Group] = &en
		}
		en := groupEnds[p.Group]
		need, behind := in.need(e)
		for ci, c := range cats {
			cr := res.Categories[c]
			at := en.at[ci]
			switch at {
			case None:
				cr.Quit++
			case string(policy.Server):
				cr.Server++
			case string(policy.Origin):
				cr.Origin++
			}
			if at != None && !en.first[ci] {
				cr.FellBack++
			}
			sc := sources[ci][at]
			if sc == nil {
				sc = &SourceCount{Source: at}
				sources[ci][at] = sc
			}
			sc.Endpoints++
			if e.Role == plan.RoleAgent {
				sc.Agents++
			} else {
				sc.Clients++
			}
			if c == category.Components {
				sc.Bytes += need
				res.Bytes.add(at, need)
			}
		}
		k := gkey{role: e.Role, at: en.at}
		g := groups[k]
		if g == nil {
			g = &Group{Role: e.Role, EndAt: map[category.Category]string{}}
			for ci, c := range cats {
				g.EndAt[c] = en.at[ci]
			}
			groups[k] = g
		}
		g.Endpoints++
		if behind {
			g.NeedUpdate++
		}
		g.Bytes += need
		if len(g.Examples) < 5 {
			g.Examples = append(g.Examples, cmp.Or(e.Hostname, e.ID))
		}
	}
	for ci, c := range cats {
		cr := res.Categories[c]
		for _, sc := range sources[ci] {
			cr.Sources = append(cr.Sources, *sc)
		}
		slices.SortFunc(cr.Sources, func(a, b SourceCount) int {
			return cmp.Or(b.Endpoints-a.Endpoints, strings.Compare(a.Source, b.Source))
		})
	}
	for _, g := range groups {
		res.Groups = append(res.Groups, *g)
	}
	slices.SortFunc(res.Groups, func(a, b Group) int {
		if n := b.Endpoints - a.Endpoints; n != 0 {
			return n
		}
		if n := strings.Compare(string(a.Role), string(b.Role)); n != 0 {
			return n
		}
		for _, c := range cats {
			if n := strings.Compare(a.EndAt[c], b.EndAt[c]); n != 0 {
				return n
			}
		}
		return 0
	})
	res.Plans = pl.Groups()
	return res
}

// endOf returns the first source of steps that is not down (None when
// every one is) and whether it is the first step.
func endOf(steps []plan.Step, down *downSet, c category.Category) (string, bool) {
	for i, s := range steps {
		if !down.has(s.Source) && (c != category.Components || !down.starved[s.Source.AgentID] || s.Source.Kind != policy.Agent) {
			return display(s.Source), i == 0
		}
	}
	return None, false
}

// display is how a result names a source: as explain does, but the
// origin always "origin" (a URL entry equal to it included).
func display(s policy.Source) string {
	if s.Kind == policy.Origin {
		return string(policy.Origin)
	}
	return s.String()
}

// starve returns the agents that are up, lack a deployed component
// version and would end at no source for components themselves, and
// marks them in down.starved. Marking one can starve others that update
// only from it, so it repeats until nothing changes (down only grows).
func (in *Input) starve(pl *Planner, agents map[string]*registry.Endpoint, down *downSet) []string {
	ids := make([]string, 0, len(agents))
	for id, a := range agents {
		if _, behind := in.need(a); behind && !down.agents[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []string
	for changed := true; changed; {
		changed = false
		for _, id := range ids {
			if down.starved[id] {
				continue
			}
			if at, _ := endOf(pl.For(agents[id]).Categories[category.Components], down, category.Components); at == None {
				down.starved[id] = true
				out = append(out, id)
				changed = true
			}
		}
	}
	slices.Sort(out)
	return out
}

// downSet answers whether a source is down.
type downSet struct {
	server, origin bool
	agents         map[string]bool
	starved        map[string]bool // agents down for components only
	urls           []string
}

func (d Down) set(p *policy.Policy) *downSet {
	ds := &downSet{server: d.Server, origin: d.Origin, agents: map[string]bool{}, starved: map[string]bool{}}
	for _, id := range d.Agents {
		ds.agents[id] = true
	}
	for _, u := range d.URLs {
		if policy.SameURL(u, p.Origin) {
			ds.origin = true // a URL equal to the origin is the origin
			continue
		}
		ds.urls = append(ds.urls, u)
	}
	return ds
}

func (ds *downSet) has(s policy.Source) bool {
	switch s.Kind {
	case policy.Server:
		return ds.server
	case policy.Origin:
		return ds.origin
	case policy.Agent:
		return ds.agents[s.AgentID]
	}
	for _, u := range ds.urls {
		if policy.SameURL(u, s.URL) {
			return true
		}
	}
	return false
}

func (d Down) strings() []string {
	out := []string{}
	if d.Server {
		out = append(out, string(policy.Server))
	}
	if d.Origin {
		out = append(out, string(policy.Origin))
	}
	for _, id := range d.Agents {
		out = append(out, "agent:"+id)
	}
	return append(out, d.URLs...)
}

// need returns the bytes e would download to reach the deployed
// component versions (nothing for a component already at its version)
// and whether it lacks any of them.
func (in *Input) need(e *registry.Endpoint) (n int64, behind bool) {
	for name, c := range in.Deployed {
		if e.Components[name] != c.Version {
			n += c.Bytes
			behind = true
		}
	}
	return n, behind
}

func (b *Bytes) add(at string, n int64) {
	switch {
	case at == None:
		b.Stranded += n
	case at == string(policy.Server):
		b.Server += n
	case at == string(policy.Origin):
		b.WAN += n
	case strings.HasPrefix(at, "agent:"):
		b.Agents += n
	default:
		b.URLs += n
	}
}
