package whatif

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/registry"
)

const (
	comp = category.Components
	dom  = category.DomainSettings
	prog = category.Programs
)

func pol(t testing.TB, edit func(*policy.Policy), entries ...string) *policy.Policy {
	t.Helper()
	p := &policy.Policy{Origin: "https://au.vendor.example/", Server: "https://server.example/",
		Clients: policy.Clients{Source: policy.Customized}, Agents: policy.Agents{Source: policy.Customized},
		FallbackToServer: policy.Fallback{Components: true, DomainSettings: true, Programs: true}}
	for _, e := range entries {
		a, s, _ := strings.Cut(e, " ")
		p.CustomSources = append(p.CustomSources, policy.Entry{Addresses: a, Source: s})
	}
	if edit != nil {
		edit(p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

func ep(id string, role plan.Role, agentID string, comps map[string]string, addrs ...string) registry.Endpoint {
	e := registry.Endpoint{ID: id, Hostname: id, Role: role, AgentID: agentID, Components: comps,
		Addresses: registry.ParseAddresses(addrs)}
	if agentID != "" {
		e.AgentURL = "https://" + id + ".example:8443/"
	}
	return e
}

// TestPlannerEqualsPlanFor checks, over random policies and endpoints,
// that the grouped planner gives every endpoint the sources and entries
// plan.For gives it.
func TestPlannerEqualsPlanFor(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sources := []string{"agent:a", "agent:b", "agent:c", "https://m1.example/x", "http://m2.example/", "https://au.vendor.example/"}
	addr := func() string {
		if r.IntN(4) == 0 {
			return fmt.Sprintf("2001:db8::%x", r.IntN(20))
		}
		if r.IntN(8) == 0 {
			return fmt.Sprintf("::ffff:10.0.0.%d", r.IntN(20))
		}
		return fmt.Sprintf("10.0.0.%d", r.IntN(20))
	}
	for i := 0; i < 2000; i++ {
		var entries []string
		seen := map[string]bool{}
		for n := r.IntN(30); n > 0; n-- {
			lo := r.IntN(18)
			e := fmt.Sprintf("10.0.0.%d-10.0.0.%d %s", lo, lo+r.IntN(18-lo), sources[r.IntN(len(sources))])
			if r.IntN(4) == 0 {
				e = fmt.Sprintf("2001:db8::%x/127 %s", r.IntN(16)&^1, sources[r.IntN(len(sources))])
			}
			if !seen[e] {
				seen[e] = true
				entries = append(entries, e)
			}
		}
		p := pol(t, func(p *policy.Policy) { p.FallbackToServer.Components = r.IntN(2) == 0 }, entries...)
		trig := []plan.Trigger{plan.Scheduled, plan.NotifyComponents}[r.IntN(2)]
		pl := NewPlanner(p, trig)
		for j := 0; j < 30; j++ {
			e := registry.Endpoint{Role: plan.RoleClient}
			if r.IntN(3) == 0 {
				e.Role, e.AgentID = plan.RoleAgent, []string{"a", "b", "c", "d"}[r.IntN(4)]
			}
			for n := 1 + r.IntN(3); n > 0; n-- {
				e.Addresses = append(e.Addresses, netip.MustParseAddr(addr()))
			}
			got := pl.For(&e)
			want := plan.For(p, plan.Endpoint{Role: e.Role, AgentID: e.AgentID, Addresses: e.Addresses}, trig)
			for _, c := range trig.Categories() {
				if g, w := stepsOf(got.Categories[c]), stepsOf(want.Categories[c]); !reflect.DeepEqual(g, w) {
					t.Fatalf("policy %v, endpoint %+v, %s: planner %v, plan.For %v", entries, e, c, g, w)
				}
			}
		}
	}
}

func stepsOf(steps []plan.Step) []string {
	out := []string{}
	for _, s := range steps {
		out = append(out, fmt.Sprintf("%s#%d", s.Source, s.Entry))
	}
	return out
}

func TestRun(t *testing.T) {
	// 10.1/16 tries ua-1, then the mirror, then the server (fallback on);
	// 10.2/16 tries ua-2 (not enrolled), then the origin; programs and
	// domain settings have no fallback.
	p := pol(t, func(p *policy.Policy) { p.FallbackToServer.DomainSettings, p.FallbackToServer.Programs = false, false },
		"10.1.0.0/16 agent:ua-1", "10.1.0.0/16 https://mirror.example/", "10.2.0.0/16 agent:ua-2", "10.2.0.0/16 https://AU.vendor.example")
	deployed := map[string]Component{"pattern": {Version: "2", Bytes: 1000}, "engine": {Version: "7", Bytes: 50}}
	current := map[string]string{"pattern": "2", "engine": "7"}
	old := map[string]string{"pattern": "1", "engine": "7"}
	reg := &registry.Snapshot{Endpoints: []registry.Endpoint{
		ep("ua-1", plan.RoleAgent, "ua-1", current, "10.1.0.1"),
		ep("c1", plan.RoleClient, "", old, "10.1.0.5"),
		ep("c2", plan.RoleClient, "", nil, "10.1.0.6"),
		ep("c3", plan.RoleClient, "", old, "10.2.0.5"),
		ep("c4", plan.RoleClient, "", current, "10.2.0.6"),
		ep("c5", plan.RoleClient, "", old, "192.168.0.5"),
		{ID: "gone", Role: plan.RoleClient, Revoked: true, Addresses: registry.ParseAddresses([]string{"10.1.0.9"})},
	}}
	type counts struct{ server, origin, quit, fellBack int }
	tests := []struct {
		name  string
		down  []string
		trig  plan.Trigger
		ends  map[category.Category]map[string]int
		count map[category.Category]counts
		bytes Bytes
	}{
		{
			name: "nothing-down",
			// ua-1 itself: mirror (never itself); c1, c2: ua-1; c3, c4:
			// ua-2 is not enrolled, so the origin; c5: no entry, the server.
			ends: map[category.Category]map[string]int{
				comp: {"agent:ua-1": 2, "https://mirror.example/": 1, "origin": 2, "server": 1},
				// ua-1 never lists itself; nobody falls back to the server
				dom: {"agent:ua-1": 2, "none": 4},
			},
			// c3, c4 fall back past ua-2
			count: map[category.Category]counts{comp: {1, 2, 0, 2}, dom: {0, 0, 4, 0}, prog: {0, 0, 4, 0}},
			// c1 1000, c2 1050 from ua-1; c3 1000 over the WAN; c5 1000 from the server
			bytes: Bytes{Agents: 2050, WAN: 1000, Server: 1000},
		},
		{
			name: "agent-and-mirror-down",
			down: []string{"agent:ua-1", "https://MIRROR.example"},
			ends: map[category.Category]map[string]int{
				comp: {"server": 4, "origin": 2},
				dom:  {"none": 6},
			},
			// ua-1 itself ends at the server, first past its mirror
			count: map[category.Category]counts{comp: {4, 2, 0, 5}, dom: {0, 0, 6, 0}},
			bytes: Bytes{Server: 3050, WAN: 1000},
		},
		{
			name: "origin-and-server-down",
			down: []string{"origin", "server"},
			ends: map[category.Category]map[string]int{
				comp: {"agent:ua-1": 2, "https://mirror.example/": 1, "none": 3},
			},
			count: map[category.Category]counts{comp: {0, 0, 3, 0}},
			bytes: Bytes{Agents: 2050, Stranded: 2000},
		},
		{
			// a notify-components run updates components only; with the
			// origin down c3 and c4 fall back to the server
			name:  "notify-components",
			trig:  plan.NotifyComponents,
			down:  []string{"https://au.vendor.example/"}, // the origin, spelled as a URL
			ends:  map[category.Category]map[string]int{comp: {"agent:ua-1": 2, "https://mirror.example/": 1, "server": 3}},
			count: map[category.Category]counts{comp: {3, 0, 0, 2}},
			bytes: Bytes{Agents: 2050, Server: 2000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDown(tt.down)
			if err != nil {
				t.Fatal(err)
			}
			res := Run(Input{Policy: p, Registry: reg, Trigger: tt.trig, Down: d, Deployed: deployed})
			if res.Endpoints != 6 {
				t.Errorf("endpoints %d, want 6 (the revoked one left out)", res.Endpoints)
			}
			if !reflect.DeepEqual(res.Unavailable, []string{"ua-2"}) {
				t.Errorf("unavailable %v, want [ua-2]", res.Unavailable)
			}
			if tt.trig == plan.NotifyComponents && len(res.Categories) != 1 {
				t.Errorf("categories %v, want components only", res.Categories)
			}
			for c, want := range tt.ends {
				got := map[string]int{}
				for _, sc := range res.Categories[c].Sources {
					got[sc.Source] = sc.Endpoints
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s ends %v, want %v", c, got, want)
				}
			}
			for c, want := range tt.count {
				cr := res.Categories[c]
				if got := (counts{cr.Server, cr.Origin, cr.Quit, cr.FellBack}); got != want {
					t.Errorf("%s server/origin/quit/fell back %v, want %v", c, got, want)
				}
			}
			if res.Bytes != tt.bytes {
				t.Errorf("bytes %+v, want %+v", res.Bytes, tt.bytes)
			}
			total := 0
			for _, g := range res.Groups {
				total += g.Endpoints
			}
			if total != 6 {
				t.Errorf("groups hold %d endpoints, want 6: %+v", total, res.Groups)
			}
		})
	}
}

func TestRunGroups(t *testing.T) {
	p := pol(t, nil, "10.1.0.0/16 agent:ua-1")
	deployed := map[string]Component{"pattern": {Version: "2", Bytes: 10}}
	reg := &registry.Snapshot{Endpoints: []registry.Endpoint{
		ep("ua-1", plan.RoleAgent, "ua-1", nil, "10.1.0.1"),
		ep("c1", plan.RoleClient, "", map[string]string{"pattern": "2"}, "10.1.0.5"),
		ep("c2", plan.RoleClient, "", nil, "10.1.0.6"),
		ep("c3", plan.RoleClient, "", nil, "10.9.0.6"),
	}}
	res := Run(Input{Policy: p, Registry: reg, Deployed: deployed})
	want := []Group{
		{Role: plan.RoleClient, EndAt: map[category.Category]string{comp: "agent:ua-1", dom: "agent:ua-1", prog: "agent:ua-1"},
			Endpoints: 2, NeedUpdate: 1, Bytes: 10, Examples: []string{"c1", "c2"}},
		{Role: plan.RoleAgent, EndAt: map[category.Category]string{comp: "server", dom: "server", prog: "server"},
			Endpoints: 1, NeedUpdate: 1, Bytes: 10, Examples: []string{"ua-1"}},
		{Role: plan.RoleClient, EndAt: map[category.Category]string{comp: "server", dom: "server", prog: "server"},
			Endpoints: 1, NeedUpdate: 1, Bytes: 10, Examples: []string{"c3"}},
	}
	if !reflect.DeepEqual(res.Groups, want) {
		t.Fatalf("groups\n%+v\nwant\n%+v", res.Groups, want)
	}
	if res.Plans != 3 {
		t.Errorf("%d plans computed, want 3 (c1 and c2 share one)", res.Plans)
	}
}

func TestParseDown(t *testing.T) {
	if _, err := ParseDown([]string{"ftp://x"}); err == nil || !strings.Contains(err.Error(), `down source "ftp://x"`) {
		t.Fatalf("ParseDown(ftp) = %v", err)
	}
	d, err := ParseDown([]string{"server", "origin", "agent:a", "https://m.example/"})
	if err != nil || !d.Server || !d.Origin || !reflect.DeepEqual(d.Agents, []string{"a"}) || !reflect.DeepEqual(d.URLs, []string{"https://m.example/"}) {
		t.Fatalf("ParseDown = %+v, %v", d, err)
	}
}

func TestCompare(t *testing.T) {
	cur := pol(t, nil, "10.0.0.0/8 agent:ua-1", "10.0.0.0/8 https://mirror.example/")
	ed := pol(t, nil, "10.0.0.0/8 https://mirror.example/", "10.0.0.0/8 agent:ua-1")
	tgt := Target{Role: plan.RoleClient, Addresses: registry.ParseAddresses([]string{"10.1.2.3"})}
	c := Compare(cur, ed, tgt, plan.Scheduled)
	if got := c.Edited.Categories[comp]; len(got) != 3 || got[0].Source != "https://mirror.example/" || got[0].Entry != 1 ||
		got[0].Why != "entry 1 (10.0.0.0/8) covers 10.1.2.3" {
		t.Fatalf("edited components %+v", got)
	}
	want := []Change{{Category: comp, Positions: []int{1, 2},
		Current: []string{"agent:ua-1", "https://mirror.example/", "server"}, Edited: []string{"https://mirror.example/", "agent:ua-1", "server"}}}
	if !reflect.DeepEqual(c.Changed, want) {
		t.Fatalf("changed %+v, want %+v", c.Changed, want)
	}
	same := Compare(cur, cur, tgt, plan.Scheduled)
	if len(same.Changed) != 0 {
		t.Fatalf("same policy changed %+v", same.Changed)
	}
	// no policy in force: every category is new
	fresh := Compare(nil, ed, tgt, plan.NotifyComponents)
	if len(fresh.Changed) != 1 || fresh.Changed[0].Category != comp || len(fresh.Changed[0].Positions) != 3 {
		t.Fatalf("against no policy: %+v", fresh.Changed)
	}
}

// An agent that has not reported its URL is not in the agent directory:
// endpoints cannot reach it, so a what-if counts it as down.
func TestRunAgentWithoutURL(t *testing.T) {
	p := pol(t, nil, "10.1.0.0/16 agent:ua-1")
	a := ep("ua-1", plan.RoleAgent, "ua-1", nil, "10.1.0.1")
	c := ep("c1", plan.RoleClient, "", nil, "10.1.0.5")
	res := Run(Input{Policy: p, Registry: &registry.Snapshot{Endpoints: []registry.Endpoint{a, c}}})
	if got := res.Categories[comp].Sources[0]; got.Source != "agent:ua-1" || res.Unavailable != nil {
		t.Fatalf("with its URL: ends %+v, unavailable %v", res.Categories[comp].Sources, res.Unavailable)
	}
	a.AgentURL = ""
	res = Run(Input{Policy: p, Registry: &registry.Snapshot{Endpoints: []registry.Endpoint{a, c}}})
	if got := res.Categories[comp]; len(got.Sources) != 1 || got.Server != 2 || !reflect.DeepEqual(res.Unavailable, []string{"ua-1"}) {
		t.Fatalf("without its URL: %+v, unavailable %v", got, res.Unavailable)
	}
}

// An agent that lacks the deployed version and would itself find no
// source cannot serve it: for components its clients move on past it, and
// an agent that updates from it only is starved in turn.
func TestRunStarvedAgents(t *testing.T) {
	p := pol(t, nil, "10.1.0.1 agent:ua-2", "10.1.0.0/16 agent:ua-1", "10.2.0.0/16 agent:ua-2")
	deployed := map[string]Component{"pattern": {Version: "2", Bytes: 100}}
	old, cur := map[string]string{"pattern": "1"}, map[string]string{"pattern": "2"}
	run := func(ua2 map[string]string) *Result {
		reg := &registry.Snapshot{Endpoints: []registry.Endpoint{
			ep("ua-1", plan.RoleAgent, "ua-1", old, "10.1.0.1"),
			ep("ua-2", plan.RoleAgent, "ua-2", ua2, "10.2.0.1"),
			ep("c1", plan.RoleClient, "", old, "10.1.0.5"),
		}}
		return Run(Input{Policy: p, Registry: reg, Down: Down{Server: true}, Deployed: deployed})
	}
	ends := func(res *Result, c category.Category) map[string]int {
		out := map[string]int{}
		for _, sc := range res.Categories[c].Sources {
			out[sc.Source] = sc.Endpoints
		}
		return out
	}
	// ua-2 lacks version 2 and the server is down: ua-2 is starved, so is
	// ua-1 (it updates from ua-2), and c1 has no source for components;
	// domain settings still come from the agents.
	res := run(old)
	if !reflect.DeepEqual(res.Starved, []string{"ua-1", "ua-2"}) || !reflect.DeepEqual(ends(res, comp), map[string]int{"none": 3}) ||
		!reflect.DeepEqual(ends(res, dom), map[string]int{"agent:ua-1": 1, "agent:ua-2": 1, "none": 1}) || res.Bytes.Stranded != 300 {
		t.Fatalf("ua-2 behind: starved %v, components %v, domain settings %v, bytes %+v", res.Starved, ends(res, comp), ends(res, dom), res.Bytes)
	}
	// ua-2 already holds version 2: it serves ua-1, which serves c1.
	res = run(cur)
	if res.Starved != nil || !reflect.DeepEqual(ends(res, comp), map[string]int{"agent:ua-2": 1, "agent:ua-1": 1, "none": 1}) || res.Bytes.Agents != 200 {
		t.Fatalf("ua-2 current: starved %v, components %v, bytes %+v", res.Starved, ends(res, comp), res.Bytes)
	}
}

// An empty registry gives empty lists, not nulls, in the answer.
func TestRunEmpty(t *testing.T) {
	res := Run(Input{Policy: pol(t, nil), Registry: &registry.Snapshot{}})
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "null") || res.Endpoints != 0 || res.Trigger != plan.Scheduled {
		t.Fatalf("empty what-if: %s", b)
	}
}
