package plan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/policy"
)

// randomPolicy draws a valid policy over a small address and source
// universe, so that overlaps, duplicates and the origin are frequent.
func randomPolicy(r *rand.Rand) *policy.Policy {
	p := &policy.Policy{
		Origin:             "https://au.vendor.example/",
		Server:             "https://server.corp.example/",
		DownloadFromOrigin: r.IntN(2) == 0,
		Clients:            policy.Clients{Source: []policy.Mode{policy.Standard, policy.Customized, policy.Customized}[r.IntN(3)]},
		Agents: policy.Agents{
			Source:                   []policy.Mode{policy.Standard, policy.Customized, policy.Customized}[r.IntN(3)],
			OnlyFromServer:           r.IntN(4) == 0,
			AlwaysFromStandardSource: r.IntN(2) == 0,
		},
		FallbackToServer: policy.Fallback{Components: r.IntN(2) == 0, DomainSettings: r.IntN(2) == 0, Programs: r.IntN(2) == 0},
	}
	sources := []string{"agent:a", "agent:b", "agent:c", "https://m1.example/x", "https://M1.example/x/",
		"http://m2.example/", "https://AU.vendor.example", "https://au.vendor.example/"}
	seen := map[string]bool{}
	for n := r.IntN(40); n > 0; n-- {
		lo := r.IntN(16)
		hi := lo + r.IntN(16-lo)
		e := policy.Entry{Addresses: fmt.Sprintf("10.0.0.%d-10.0.0.%d", lo, hi), Source: sources[r.IntN(len(sources))]}
		if r.IntN(5) == 0 {
			e.Addresses = fmt.Sprintf("2001:db8::%x/127", r.IntN(16)&^1)
		}
		if seen[e.Addresses+e.Source] {
			continue
		}
		seen[e.Addresses+e.Source] = true
		p.CustomSources = append(p.CustomSources, e)
	}
	return p
}

// TestPlanProperties checks, over random policies and endpoints, the
// invariants of docs/update-process.md: each source at most once per category; never
// the origin or a URL for domain settings or programs; an agent never
// lists itself; list entries in list order; the categories of the trigger.
func TestPlanProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	triggers := []Trigger{Scheduled, Manual, NotifyComponents}
	for i := 0; i < 20000; i++ {
		p := randomPolicy(r)
		if err := p.Validate(); err != nil {
			// Exact duplicates after URL normalisation are invalid; skip them.
			continue
		}
		ep := Endpoint{Role: RoleClient}
		if r.IntN(2) == 0 {
			ep = Endpoint{Role: RoleAgent, AgentID: []string{"a", "b", "z"}[r.IntN(3)]}
		}
		for n := 1 + r.IntN(3); n > 0; n-- {
			if r.IntN(4) == 0 {
				ep.Addresses = append(ep.Addresses, netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", r.IntN(16))))
			} else {
				ep.Addresses = append(ep.Addresses, netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(16))}))
			}
		}
		trig := triggers[r.IntN(3)]
		pl := For(p, ep, trig)
		if err := checkPlan(pl, ep, trig); err != nil {
			t.Fatalf("case %d: %v\npolicy %+v\nendpoint %+v\nplan %+v", i, err, p, ep, pl.Categories)
		}
	}
}

func checkPlan(pl Plan, ep Endpoint, trig Trigger) error {
	if len(pl.Categories) != len(trig.Categories()) {
		return fmt.Errorf("categories %v for trigger %s", pl.Categories, trig)
	}
	for _, c := range trig.Categories() {
		steps, ok := pl.Categories[c]
		if !ok {
			return fmt.Errorf("category %s missing", c)
		}
		seen := map[string]bool{}
		lastEntry := 0
		for _, s := range steps {
			key := s.Source.String()
			switch {
			case seen[key]:
				return fmt.Errorf("%s lists %s twice", c, key)
			case c != category.Components && (s.Source.Kind == policy.Origin || s.Source.Kind == policy.URL):
				return fmt.Errorf("%s lists %s", c, key)
			case ep.Role == RoleAgent && s.Source.Kind == policy.Agent && s.Source.AgentID == ep.AgentID:
				return fmt.Errorf("agent %s lists itself for %s", ep.AgentID, c)
			case s.Entry != 0 && s.Entry <= lastEntry:
				return fmt.Errorf("%s: entry %d after entry %d", c, s.Entry, lastEntry)
			}
			seen[key] = true
			if s.Entry != 0 {
				lastEntry = s.Entry
			}
		}
	}
	return nil
}

// fullList is a policy document with 1024 entries, a third of them URLs.
func fullList() []byte {
	var buf strings.Builder
	buf.WriteString("origin: https://au.vendor.example/\nserver: https://server.corp.example/\n" +
		"clients: {source: customized}\nagents: {source: customized}\ncustom_sources:\n")
	for i := 0; i < policy.MaxSources; i++ {
		src := fmt.Sprintf("agent:ua-%d", i)
		if i%3 == 0 {
			src = fmt.Sprintf("https://mirror-%d.corp.example/cascade/", i)
		}
		fmt.Fprintf(&buf, "  - {addresses: 10.%d.0.0/15, source: %q}\n", i%256, src)
	}
	return []byte(buf.String())
}

// BenchmarkParse1024 is the baseline of BenchmarkFor1024: decoding and
// validating the same 1024-entry policy, done once per policy change.
func BenchmarkParse1024(b *testing.B) {
	data := fullList()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFor1024 measures planning with a full list of 1024 entries and
// an endpoint with 4 addresses, as done on every update run.
func BenchmarkFor1024(b *testing.B) {
	p, err := policy.Parse(fullList())
	if err != nil {
		b.Fatal(err)
	}
	ep := Endpoint{Role: RoleAgent, AgentID: "ua-7", Addresses: []netip.Addr{
		netip.MustParseAddr("10.7.1.1"), netip.MustParseAddr("10.200.1.1"),
		netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("2001:db8::1")}}
	b.ReportAllocs()
	for b.Loop() {
		pl := For(p, ep, Scheduled)
		if len(pl.Categories[category.Components]) == 0 {
			b.Fatal("empty plan")
		}
	}
}
