package plan

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/policy"
)

// testPolicy is the list every rule test starts from.
//
//	1  10.0.0.0/8               agent:ua-1
//	2  10.1.0.0-10.1.255.255    https://mirror.corp.example/cascade/
//	3  10.1.2.3                 agent:ua-2
//	4  192.168.0.0/16           the origin, spelled differently
//	5  10.1.0.0/16              agent:ua-1 (a later duplicate for 10.1.x.x)
//	6  2001:db8::/32            agent:ua-6
//	7  192.168.0.0/16           agent:ua-7
func testPolicy(t testing.TB, edit func(p *policy.Policy)) *policy.Policy {
	t.Helper()
	p := &policy.Policy{
		Origin:           "https://au.vendor.example/",
		Server:           "https://server.corp.example/",
		Clients:          policy.Clients{Source: policy.Customized},
		Agents:           policy.Agents{Source: policy.Customized},
		FallbackToServer: policy.Fallback{Components: true, DomainSettings: true, Programs: true},
		CustomSources: []policy.Entry{
			{Addresses: "10.0.0.0/8", Source: "agent:ua-1"},
			{Addresses: "10.1.0.0-10.1.255.255", Source: "https://mirror.corp.example/cascade/"},
			{Addresses: "10.1.2.3", Source: "agent:ua-2"},
			{Addresses: "192.168.0.0/16", Source: "HTTPS://AU.Vendor.Example"},
			{Addresses: "10.1.0.0/16", Source: "agent:ua-1"},
			{Addresses: "2001:db8::/32", Source: "agent:ua-6"},
			{Addresses: "192.168.0.0/16", Source: "agent:ua-7"},
		},
	}
	if edit != nil {
		edit(p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

type want map[category.Category][]string

const (
	mirror = "https://mirror.corp.example/cascade/"
	comp   = category.Components
	dom    = category.DomainSettings
	prog   = category.Programs
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestRules(t *testing.T) {
	onlyFromServer := func(p *policy.Policy) { p.Agents.OnlyFromServer = true }
	always := func(p *policy.Policy) { p.Agents.AlwaysFromStandardSource = true }
	fromOrigin := func(p *policy.Policy) { p.DownloadFromOrigin = true }
	noFallback := func(p *policy.Policy) { p.FallbackToServer = policy.Fallback{} }
	noCompFallback := func(p *policy.Policy) { p.FallbackToServer.Components = false }
	agentsStandard := func(p *policy.Policy) { p.Agents.Source = policy.Standard }
	clientsStandard := func(p *policy.Policy) { p.Clients.Source = policy.Standard }
	all := func(edits ...func(*policy.Policy)) func(*policy.Policy) {
		return func(p *policy.Policy) {
			for _, e := range edits {
				e(p)
			}
		}
	}
	tests := []struct {
		name    string
		edit    func(*policy.Policy)
		role    Role
		agentID string
		addrs   []netip.Addr
		trigger Trigger
		rule    string
		want    want
	}{
		{
			// the source document: "The Update Agent updates from the first entry on
			// the list. If unable to update from the first entry, the agent updates
			// from the second entry, and so on." then "Update components from the
			// OfficeScan server if all customized sources are not available or not
			// found: If enabled, the agent updates from the OfficeScan server."
			name: "list-order-then-server",
			role: RoleClient, addrs: addrs("10.1.2.3"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"agent:ua-1", mirror, "agent:ua-2", "server"}, dom: {"agent:ua-1", "agent:ua-2", "server"}, prog: {"agent:ua-1", "agent:ua-2", "server"}},
		},
		{
			// effective list: entries of any of the endpoint's addresses, in list
			// order (IPv6 and IPv4-mapped addresses)
			name: "effective-list-any-address",
			role: RoleClient, addrs: addrs("2001:db8:1::9", "::ffff:10.200.0.1"), trigger: Manual, rule: RuleCustomized,
			want: want{comp: {"agent:ua-1", "agent:ua-6", "server"}, dom: {"agent:ua-1", "agent:ua-6", "server"}, prog: {"agent:ua-1", "agent:ua-6", "server"}},
		},
		{
			// the source document: "If the option is disabled, the agent then tries
			// connecting directly to the Trend Micro ActiveUpdate server if ... The
			// ActiveUpdate server is not included in the Customized Update Source
			// List."
			name: "no-fallback-origin-not-listed",
			edit: noCompFallback, role: RoleAgent, agentID: "ua-9", addrs: addrs("10.1.2.3"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"agent:ua-1", mirror, "agent:ua-2", "origin"}, dom: {"agent:ua-1", "agent:ua-2", "server"}, prog: {"agent:ua-1", "agent:ua-2", "server"}},
		},
		{
			// fallback off and the origin in the effective list: the origin is tried
			// once, at its position, not again at the end
			name: "no-fallback-origin-listed-once",
			edit: noCompFallback, role: RoleClient, addrs: addrs("192.168.1.1"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"origin", "agent:ua-7"}, dom: {"agent:ua-7", "server"}, prog: {"agent:ua-7", "server"}},
		},
		{
			// the source document: "Clients download updates from the Trend Micro
			// ActiveUpdate Server is enabled": origin after the list, but only once
			// when already listed
			name: "download-from-origin-once",
			edit: all(noCompFallback, fromOrigin), role: RoleClient, addrs: addrs("192.168.1.1", "10.1.2.3"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"agent:ua-1", mirror, "agent:ua-2", "origin", "agent:ua-7"}, dom: {"agent:ua-1", "agent:ua-2", "agent:ua-7", "server"}, prog: {"agent:ua-1", "agent:ua-2", "agent:ua-7", "server"}},
		},
		{
			// fallback off and download_from_origin on: origin appended after the list
			name: "no-fallback-download-from-origin",
			edit: all(noCompFallback, fromOrigin), role: RoleClient, addrs: addrs("10.9.9.9"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"agent:ua-1", "origin"}, dom: {"agent:ua-1", "server"}, prog: {"agent:ua-1", "server"}},
		},
		{
			// the source document: "Domain settings, programs and hot fixes can only
			// be downloaded from the server or Update Agents": no URL, no origin, and
			// without fallback no server
			name: "settings-programs-no-url-no-origin",
			edit: noFallback, role: RoleClient, addrs: addrs("192.168.1.1", "10.1.9.9"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"agent:ua-1", mirror, "origin", "agent:ua-7"}, dom: {"agent:ua-1", "agent:ua-7"}, prog: {"agent:ua-1", "agent:ua-7"}},
		},
		{
			// the source document: "If unable to update from all possible sources, the
			// Update Agent quits": with no source a category's plan is empty
			name: "quits-with-empty-plan",
			edit: noFallback, role: RoleClient, addrs: addrs("172.16.0.1"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"origin"}, dom: {}, prog: {}},
		},
		{
			// empty effective list with fallback: the server
			name: "empty-list-server",
			role: RoleClient, addrs: addrs("172.16.0.1"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"server"}, dom: {"server"}, prog: {"server"}},
		},
		{
			// an agent never lists itself
			name: "agent-never-lists-itself",
			role: RoleAgent, agentID: "ua-1", addrs: addrs("10.1.2.3"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {mirror, "agent:ua-2", "server"}, dom: {"agent:ua-2", "server"}, prog: {"agent:ua-2", "server"}},
		},
		{
			// a client is not an agent: an agent id does not remove entries
			name: "client-agent-id-ignored",
			role: RoleClient, agentID: "ua-1", addrs: addrs("10.5.0.1"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"agent:ua-1", "server"}, dom: {"agent:ua-1", "server"}, prog: {"agent:ua-1", "server"}},
		},
		{
			// the source document's Note: "Ensure that the Update Agents update
			// components, domain settings, and client programs and hot fixes, only
			// from the OfficeScan server option is disabled ... in order for Update
			// Agents to connect to the customized update sources" (rule 1)
			name: "rule1-only-from-server",
			edit: onlyFromServer, role: RoleAgent, agentID: "ua-9", addrs: addrs("10.1.2.3"), trigger: Scheduled, rule: RuleOnlyFromServer,
			want: want{comp: {"server"}, dom: {"server"}, prog: {"server"}},
		},
		{
			// rule 1 takes precedence over rule 2
			name: "rule1-before-rule2",
			edit: all(onlyFromServer, always, fromOrigin), role: RoleAgent, addrs: addrs("192.168.1.1"), trigger: NotifyComponents, rule: RuleOnlyFromServer,
			want: want{comp: {"server"}},
		},
		{
			// rule 1 applies to update agents only
			name: "rule1-agents-only",
			edit: onlyFromServer, role: RoleClient, addrs: addrs("10.5.0.1"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"agent:ua-1", "server"}, dom: {"agent:ua-1", "server"}, prog: {"agent:ua-1", "server"}},
		},
		{
			// the source document: "The agent updates directly from the OfficeScan
			// server and disregards the update source list." (rule 2)
			name: "rule2-server-only",
			edit: always, role: RoleAgent, agentID: "ua-9", addrs: addrs("10.1.2.3"), trigger: NotifyComponents, rule: RuleAlwaysFromServer,
			want: want{comp: {"server"}},
		},
		{
			// the source document: "If unable to update from the server, the agent
			// tries connecting directly to the Trend Micro ActiveUpdate server if ...
			// Clients download updates from the Trend Micro ActiveUpdate Server is
			// enabled."
			name: "rule2-origin-privilege",
			edit: all(always, fromOrigin), role: RoleAgent, addrs: addrs("10.1.2.3"), trigger: NotifyComponents, rule: RuleAlwaysFromServer,
			want: want{comp: {"server", "origin"}},
		},
		{
			// the source document: "The ActiveUpdate server is the first entry in the
			// Customized Update Source List."
			name: "rule2-origin-first-entry",
			edit: always, role: RoleAgent, addrs: addrs("192.168.1.1"), trigger: NotifyComponents, rule: RuleAlwaysFromServer,
			want: want{comp: {"server", "origin"}},
		},
		{
			// rule 2: the origin listed but not first in the effective list is not
			// tried
			name: "rule2-origin-not-first",
			edit: always, role: RoleAgent, addrs: addrs("10.1.2.3", "192.168.1.1"), trigger: NotifyComponents, rule: RuleAlwaysFromServer,
			want: want{comp: {"server"}},
		},
		{
			// the source document: "The update process is different if the option ...
			// is enabled and the OfficeScan server notifies the agent": a scheduled
			// run keeps the customized plan
			name: "rule2-scheduled-customized",
			edit: always, role: RoleAgent, addrs: addrs("10.5.0.1"), trigger: Scheduled, rule: RuleCustomized,
			want: want{comp: {"agent:ua-1", "server"}, dom: {"agent:ua-1", "server"}, prog: {"agent:ua-1", "server"}},
		},
		{
			// rule 2 takes precedence over rule 3 (the origin first in the list
			// counts)
			name: "rule2-before-rule3",
			edit: all(always, agentsStandard), role: RoleAgent, addrs: addrs("192.168.1.1"), trigger: NotifyComponents, rule: RuleAlwaysFromServer,
			want: want{comp: {"server", "origin"}},
		},
		{
			// rule 3: agents.source standard
			name: "rule3-standard",
			edit: agentsStandard, role: RoleAgent, addrs: addrs("192.168.1.1"), trigger: Scheduled, rule: RuleStandard,
			want: want{comp: {"server"}, dom: {"server"}, prog: {"server"}},
		},
		{
			// rule 3 with download_from_origin: components from the server, then the
			// origin
			name: "rule3-download-from-origin",
			edit: all(agentsStandard, fromOrigin), role: RoleAgent, addrs: addrs("10.1.2.3"), trigger: Manual, rule: RuleStandard,
			want: want{comp: {"server", "origin"}, dom: {"server"}, prog: {"server"}},
		},
		{
			// rule 3 with a notification: components only
			name: "rule3-notification",
			edit: agentsStandard, role: RoleAgent, addrs: addrs("10.1.2.3"), trigger: NotifyComponents, rule: RuleStandard,
			want: want{comp: {"server"}},
		},
		{
			// client standard: as rule 3
			name: "client-standard",
			edit: all(clientsStandard, fromOrigin), role: RoleClient, addrs: addrs("10.1.2.3"), trigger: Scheduled, rule: RuleStandard,
			want: want{comp: {"server", "origin"}, dom: {"server"}, prog: {"server"}},
		},
		{
			// client standard ignores the agent settings
			name: "client-standard-ignores-agent-options",
			edit: all(clientsStandard, onlyFromServer, always), role: RoleClient, addrs: addrs("192.168.1.1"), trigger: NotifyComponents, rule: RuleStandard,
			want: want{comp: {"server"}},
		},
		{
			// a notify-components run updates components only (customized)
			name: "notify-components-only",
			role: RoleClient, addrs: addrs("10.1.2.3"), trigger: NotifyComponents, rule: RuleCustomized,
			want: want{comp: {"agent:ua-1", mirror, "agent:ua-2", "server"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy(t, tt.edit)
			pl := For(p, Endpoint{Role: tt.role, AgentID: tt.agentID, Addresses: tt.addrs}, tt.trigger)
			if pl.Rule != tt.rule {
				t.Errorf("rule = %s, want %s", pl.Rule, tt.rule)
			}
			got := want{}
			for c, steps := range pl.Categories {
				got[c] = []string{}
				for _, s := range steps {
					got[c] = append(got[c], s.Source.String())
					if s.Why == "" {
						t.Errorf("%s step %s has no reason", c, s.Source)
					}
				}
			}
			for c, list := range tt.want {
				if list == nil {
					tt.want[c] = []string{}
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plan:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestEffectiveRemovesLaterDuplicates(t *testing.T) {
	p := testPolicy(t, nil)
	list, dropped := Effective(p, addrs("10.1.2.3"))
	var entries []int
	for _, m := range list {
		entries = append(entries, m.Entry)
	}
	if !reflect.DeepEqual(entries, []int{1, 2, 3}) {
		t.Errorf("effective entries = %v, want [1 2 3]", entries)
	}
	if len(dropped) != 1 || !strings.Contains(dropped[0], "entry 5") || !strings.Contains(dropped[0], "entry 1") {
		t.Errorf("dropped = %q, want entry 5 as a duplicate of entry 1", dropped)
	}
}

func TestWhyNamesTheEntry(t *testing.T) {
	p := testPolicy(t, nil)
	pl := For(p, Endpoint{Role: RoleClient, Addresses: addrs("192.168.4.4")}, Scheduled)
	first := pl.Categories[comp][0]
	if first.Entry != 4 || !strings.Contains(first.Why, "entry 4") || !strings.Contains(first.Why, "192.168.4.4") || !strings.Contains(first.Why, "origin") {
		t.Errorf("first step = %+v", first)
	}
	if first.Source.URL != p.Origin {
		t.Errorf("origin step URL = %q, want the policy's origin %q", first.Source.URL, p.Origin)
	}
}
