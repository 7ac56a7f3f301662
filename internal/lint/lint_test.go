package lint

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/registry"
)

func pol(t *testing.T, edit func(*policy.Policy), entries ...string) *policy.Policy {
	t.Helper()
	p := &policy.Policy{Origin: "https://au.vendor.example/", Server: "https://server.example/",
		Clients: policy.Clients{Source: policy.Customized}, Agents: policy.Agents{Source: policy.Customized}}
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

func ep(id string, role plan.Role, agentID string, revoked bool, addrs ...string) registry.Endpoint {
	return registry.Endpoint{ID: id, Hostname: id + ".corp", Role: role, AgentID: agentID, Revoked: revoked,
		Addresses: registry.ParseAddresses(addrs)}
}

// base is a registry in which every entry of the tests below is fine
// unless a test says otherwise: agent ua-1 (dual stack), a client at
// 10.1.0.5 and one at 2001:db8::5.
func base() []registry.Endpoint {
	return []registry.Endpoint{
		ep("e-ua1", plan.RoleAgent, "ua-1", false, "10.0.0.1", "2001:db8::1"),
		ep("e-c1", plan.RoleClient, "", false, "10.1.0.5"),
		ep("e-c2", plan.RoleClient, "", false, "2001:db8::5"),
	}
}

type got struct {
	Kind  Kind
	Entry int
	Agent string
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		extra   []registry.Endpoint
		edit    func(*policy.Policy)
		want    []got
		says    string // a part of the first warning's message
	}{
		{name: "clean", entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1", "10.1.0.0/16 https://mirror.example/"}},
		{
			name:    "unknown-agent",
			entries: []string{"10.0.0.0/8 agent:ua-1", "10.0.0.0/8 agent:ua-9"},
			want:    []got{{UnknownAgent, 2, "ua-9"}},
			says:    "custom_sources entry 2 (10.0.0.0/8 agent:ua-9): no enrolled update agent has the id ua-9",
		},
		{
			name:    "revoked-agent",
			entries: []string{"10.0.0.0/8 agent:ua-1", "10.0.0.0/8 agent:ua-2"},
			extra:   []registry.Endpoint{ep("e-ua2", plan.RoleAgent, "ua-2", true, "10.0.0.2")},
			want:    []got{{RevokedAgent, 2, "ua-2"}},
			says:    "agent ua-2 (endpoint e-ua2.corp) is revoked",
		},
		{
			// a revoked endpoint's address does not count as enrolled
			name:    "revoked-endpoint-covers-nothing",
			entries: []string{"10.0.0.0/8 agent:ua-1", "192.168.0.0/16 agent:ua-1"},
			extra:   []registry.Endpoint{ep("e-old", plan.RoleClient, "", true, "192.168.1.1")},
			want:    []got{{CoversNothing, 2, ""}},
			says:    "no enrolled endpoint has an address in 192.168.0.0-192.168.255.255",
		},
		{
			name:    "agent-without-ipv6",
			entries: []string{"10.0.0.0/8 agent:ua-1", "10.0.0.0/8 agent:ua-4", "2001:db8::/32 agent:ua-4", "2001:db8::/32 agent:ua-1"},
			extra:   []registry.Endpoint{ep("e-ua4", plan.RoleAgent, "ua-4", false, "10.0.0.4")},
			want:    []got{{AgentFamily, 3, "ua-4"}},
			says:    "agent ua-4 (endpoint e-ua4.corp) has no IPv6 address, and an IPv6 prefix or range needs an agent with one",
		},
		{
			// an IPv4-mapped address is IPv4
			name:    "agent-without-ipv4",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1", "2001:db8::/32 agent:ua-6", "10.1.0.0/16 agent:ua-6", "10.0.0.0/8 agent:ua-4"},
			extra: []registry.Endpoint{ep("e-ua6", plan.RoleAgent, "ua-6", false, "2001:db8::6"),
				ep("e-ua4", plan.RoleAgent, "ua-4", false, "::ffff:10.0.0.4")},
			want: []got{{AgentFamily, 4, "ua-6"}},
			says: "has no IPv4 address, and an IPv4 range needs an agent with one",
		},
		{
			name:    "covers-no-endpoint",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1", "10.2.0.0-10.2.0.255 https://mirror.example/", "2001:db9::/32 https://mirror.example/"},
			want:    []got{{CoversNothing, 3, ""}, {CoversNothing, 4, ""}},
		},
		{
			// the ends of a range count: 10.1.0.5 is its last address
			name:    "covers-at-the-edge",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1", "10.1.0.0-10.1.0.5 https://mirror.example/", "10.1.0.5-10.1.0.9 https://other.example/"},
		},
		{
			name:    "unreachable-one-earlier",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1", "10.1.0.0/16 https://mirror.example/", "10.1.0.0-10.1.0.255 https://MIRROR.example"},
			want:    []got{{Unreachable, 4, ""}},
			says:    "custom_sources entry 4 (10.1.0.0-10.1.0.255 https://MIRROR.example) is never used: entry 3 with the same source already cover",
		},
		{
			// two earlier entries, neither enough alone, together cover it
			// (overlapping, adjacent, listed out of order)
			name: "unreachable-union",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1",
				"10.1.128.0/17 https://mirror.example/", "10.1.0.0-10.1.100.0 https://mirror.example/", "10.1.100.0-10.1.127.255 https://mirror.example/",
				"10.1.0.0/16 https://mirror.example/"},
			want: []got{{CoversNothing, 3, ""}, {CoversNothing, 5, ""}, {Unreachable, 6, ""}},
			says: "",
		},
		{
			// a gap of one address keeps it reachable
			name: "union-with-gap",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1",
				"10.1.0.0-10.1.0.4 https://mirror.example/", "10.1.0.6-10.1.255.255 https://mirror.example/", "10.1.0.0/16 https://mirror.example/"},
			want: []got{{CoversNothing, 3, ""}, {CoversNothing, 4, ""}},
		},
		{
			// an earlier entry with another source does not make it unreachable
			name:    "different-source-reachable",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1", "10.0.0.0/8 https://mirror.example/"},
		},
		{
			// the origin spelled two ways is one source
			name:    "origin-unreachable",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1", "0.0.0.0/0 https://au.vendor.example", "10.0.0.0/8 HTTPS://AU.VENDOR.EXAMPLE/"},
			want:    []got{{Unreachable, 4, ""}},
		},
		{
			name:    "unused-agent",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1"},
			extra:   []registry.Endpoint{ep("e-ua3", plan.RoleAgent, "ua-3", false, "10.3.0.1"), ep("e-ua2", plan.RoleAgent, "ua-2", false, "10.2.0.1")},
			want:    []got{{UnusedAgent, 0, "ua-2"}, {UnusedAgent, 0, "ua-3"}},
			says:    "update agent ua-2 (endpoint e-ua2.corp) is named by no entry",
		},
		{
			// with both modes standard the list is read by nobody: say so
			name:    "unused-agent-list-not-read",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1"},
			edit:    func(p *policy.Policy) { p.Clients.Source, p.Agents.Source = policy.Standard, policy.Standard },
			extra:   []registry.Endpoint{ep("e-ua2", plan.RoleAgent, "ua-2", false, "10.2.0.1")},
			want:    []got{{UnusedAgent, 0, "ua-2"}},
			says:    "for the addresses it should serve and set clients.source to customized (with clients.source and agents.source standard no endpoint reads the list), or make it a client",
		},
		{
			// a revoked agent is not an unused agent
			name:    "revoked-agent-not-unused",
			entries: []string{"10.0.0.0/8 agent:ua-1", "2001:db8::/32 agent:ua-1"},
			extra:   []registry.Endpoint{ep("e-ua3", plan.RoleAgent, "ua-3", true, "10.3.0.1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := &registry.Snapshot{Endpoints: append(base(), tt.extra...)}
			ws := Check(pol(t, tt.edit, tt.entries...), reg)
			var g []got
			for _, w := range ws {
				g = append(g, got{w.Kind, w.Entry, w.Agent})
				if strings.Contains(w.Message, "\n") || !strings.Contains(w.Message, ": ") {
					t.Errorf("message is not one line saying what to do: %q", w.Message)
				}
			}
			if !reflect.DeepEqual(g, tt.want) {
				t.Fatalf("warnings %v, want %v\n%v", g, tt.want, ws)
			}
			if tt.says != "" && !strings.Contains(ws[0].Message, tt.says) {
				t.Errorf("message %q does not say %q", ws[0].Message, tt.says)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	r := func(s string) policy.Range {
		x, err := policy.ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	tests := []struct {
		union []string
		r     string
		want  bool
	}{
		{[]string{"0.0.0.0/0"}, "255.255.255.255", true},
		{[]string{"0.0.0.0/1", "128.0.0.0/1"}, "0.0.0.0/0", true},
		{[]string{"128.0.0.0/1", "0.0.0.0-127.255.255.254"}, "0.0.0.0/0", false},
		{[]string{"10.0.0.0-10.0.0.9", "10.0.0.5-10.0.0.20", "10.0.0.21"}, "10.0.0.0-10.0.0.21", true},
		{[]string{"10.0.0.1-10.0.0.9"}, "10.0.0.0-10.0.0.9", false},
		{[]string{"2001:db8::/33", "2001:db8:8000::/33"}, "2001:db8::/32", true},
		{[]string{"::/1", "8000::/1"}, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
	}
	for _, tt := range tests {
		var rs []policy.Range
		for _, u := range tt.union {
			rs = append(rs, r(u))
		}
		if got := covers(rs, r(tt.r)); got != tt.want {
			t.Errorf("covers(%v, %s) = %v, want %v", tt.union, tt.r, got, tt.want)
		}
	}
}
