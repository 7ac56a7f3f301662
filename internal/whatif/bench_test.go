package whatif

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/registry"
)

// benchFleet is a policy of 1024 entries and a registry of n endpoints:
// 1000 sites, each a /24 with its own update agent (entries 1-1000); 20
// /16 mirrors (URLs), 2 IPv6 /48 entries, the origin for 10/8 and a CDN
// for everything. Endpoints are spread over the sites at random, 30% with
// an IPv6 address too, half of them behind on one component.
func benchFleet(b *testing.B, n int) (*policy.Policy, *registry.Snapshot) {
	r := rand.New(rand.NewPCG(7, 8))
	p := &policy.Policy{Origin: "https://au.vendor.example/", Server: "https://server.example/",
		Clients: policy.Clients{Source: policy.Customized}, Agents: policy.Agents{Source: policy.Customized},
		FallbackToServer: policy.Fallback{Components: true, DomainSettings: true, Programs: true}}
	site := func(i int) (int, int) { return 1 + i/250, i % 250 }
	for i := range 1000 {
		x, y := site(i)
		p.CustomSources = append(p.CustomSources, policy.Entry{Addresses: fmt.Sprintf("10.%d.%d.0/24", x, y), Source: fmt.Sprintf("agent:ua-%d", i)})
	}
	for i := range 20 {
		p.CustomSources = append(p.CustomSources, policy.Entry{Addresses: fmt.Sprintf("10.%d.0.0/16", i%5+1), Source: fmt.Sprintf("https://mirror-%d.example/", i)})
	}
	p.CustomSources = append(p.CustomSources,
		policy.Entry{Addresses: "2001:db8:1::/48", Source: "agent:ua-1"},
		policy.Entry{Addresses: "2001:db8:2::/48", Source: "agent:ua-2"},
		policy.Entry{Addresses: "10.0.0.0/8", Source: "https://au.vendor.example/"},
		policy.Entry{Addresses: "0.0.0.0/0", Source: "https://cdn.example/"})
	if err := p.Validate(); err != nil {
		b.Fatal(err)
	}
	reg := &registry.Snapshot{Endpoints: make([]registry.Endpoint, 0, n)}
	for i := range 1000 {
		x, y := site(i)
		reg.Endpoints = append(reg.Endpoints, registry.Endpoint{ID: fmt.Sprintf("a%d", i), Role: plan.RoleAgent, AgentID: fmt.Sprintf("ua-%d", i),
			Addresses:  []netip.Addr{netip.AddrFrom4([4]byte{10, byte(x), byte(y), 1})},
			Components: map[string]string{"pattern": "2", "engine": "7"}})
	}
	for i := len(reg.Endpoints); i < n; i++ {
		x, y := site(r.IntN(1000))
		e := registry.Endpoint{ID: fmt.Sprintf("c%d", i), Role: plan.RoleClient,
			Addresses:  []netip.Addr{netip.AddrFrom4([4]byte{10, byte(x), byte(y), byte(2 + r.IntN(250))})},
			Components: map[string]string{"pattern": "2", "engine": "7"}}
		if r.IntN(10) < 3 {
			e.Addresses = append(e.Addresses, netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::%x", 1+r.IntN(4), r.IntN(1<<16))))
		}
		if r.IntN(2) == 0 {
			e.Components["pattern"] = "1"
		}
		reg.Endpoints = append(reg.Endpoints, e)
	}
	return p, reg
}

// BenchmarkPlanForLoop is the baseline: plan.For for every endpoint.
func BenchmarkPlanForLoop(b *testing.B) {
	p, reg := benchFleet(b, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range reg.Endpoints {
			e := &reg.Endpoints[i]
			plan.For(p, plan.Endpoint{Role: e.Role, AgentID: e.AgentID, Addresses: e.Addresses}, plan.Scheduled)
		}
	}
	b.ReportMetric(float64(len(reg.Endpoints)), "endpoints")
}

// BenchmarkWhatIf is Run over the same fleet, with 100 agents, two
// mirrors and the origin down.
func BenchmarkWhatIf(b *testing.B) {
	p, reg := benchFleet(b, 100_000)
	d := Down{Origin: true, URLs: []string{"https://mirror-0.example/", "https://mirror-3.example/"}}
	for i := range 100 {
		d.Agents = append(d.Agents, fmt.Sprintf("ua-%d", i*7))
	}
	in := Input{Policy: p, Registry: reg, Down: d,
		Deployed: map[string]Component{"pattern": {Version: "2", Bytes: 80 << 20}, "engine": {Version: "7", Bytes: 20 << 20}}}
	b.ReportAllocs()
	b.ResetTimer()
	var res *Result
	for b.Loop() {
		res = Run(in)
	}
	b.ReportMetric(float64(res.Plans), "plans")
	b.ReportMetric(float64(res.Endpoints), "endpoints")
}
