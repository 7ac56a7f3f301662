package plan

import (
	"fmt"
	"net/netip"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/policy"
)

// Match is one entry of an endpoint's effective list.
type Match struct {
	Entry   int           `json:"entry"` // 1-based position in custom_sources
	Source  policy.Source `json:"source"`
	Range   string        `json:"addresses"` // the entry's addresses as written
	Address netip.Addr    `json:"address"`   // the endpoint address it covers
}

// Effective returns the effective list of an endpoint with the given
// addresses: the entries whose addresses contain one of them, in list
// order, with later duplicates of the same source removed. dropped are the
// removed duplicates, each with the entry it repeats.
func Effective(p *policy.Policy, addrs []netip.Addr) (list []Match, dropped []string) {
	first := map[string]int{}
	for i, e := range p.CustomSources {
		a, ok := covered(e.Range(), addrs)
		if !ok {
			continue
		}
		if at, dup := first[e.Key()]; dup {
			dropped = append(dropped, fmt.Sprintf("entry %d (%s) skipped: same source as entry %d", i+1, e.Source, at))
			continue
		}
		first[e.Key()] = i + 1
		list = append(list, Match{Entry: i + 1, Source: e.Src(), Range: e.Addresses, Address: a})
	}
	return list, dropped
}

func covered(r policy.Range, addrs []netip.Addr) (netip.Addr, bool) {
	for _, a := range addrs {
		if r.Contains(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// For returns the plan of endpoint ep under policy p for a run started by
// trigger t. p must be valid (policy.Parse or Validate). For an update
// agent the first rule that applies decides:
//  1. agents.only_from_server: every category from the server;
//  2. notify-components with agents.always_from_standard_source: the
//     server, then the origin when allowed;
//  3. agents.source standard: the standard plan;
//  4. otherwise the customized plan.
//
// A client follows clients.source: the standard or the customized plan.
func For(p *policy.Policy, ep Endpoint, t Trigger) Plan {
	eff, dropped := Effective(p, ep.Addresses)
	pl := Plan{Role: ep.Role, Trigger: t, Categories: map[category.Category][]Step{}, Effective: eff, Notes: dropped}
	b := builder{p: p, ep: ep, eff: eff, plan: &pl}
	switch {
	case ep.Role == RoleAgent && p.Agents.OnlyFromServer:
		b.onlyFromServer()
	case ep.Role == RoleAgent && t == NotifyComponents && p.Agents.AlwaysFromStandardSource:
		b.alwaysFromStandard()
	case ep.Role == RoleAgent && p.Agents.Source == policy.Standard:
		b.standard("agents.source is standard")
	case ep.Role == RoleClient && p.Clients.Source == policy.Standard:
		b.standard("clients.source is standard")
	default:
		b.customized()
	}
	return pl
}

type builder struct {
	p    *policy.Policy
	ep   Endpoint
	eff  []Match
	plan *Plan
}

// add appends a step to c unless its source is already there: each source
// appears at most once per category, at its first position.
func (b *builder) add(c category.Category, s Step) {
	for _, have := range b.plan.Categories[c] {
		if have.Source.Kind == s.Source.Kind && have.Source.String() == s.Source.String() {
			return
		}
	}
	b.plan.Categories[c] = append(b.plan.Categories[c], s)
}

var (
	server = policy.Source{Kind: policy.Server}
)

func (b *builder) origin() policy.Source { return policy.Source{Kind: policy.Origin, URL: b.p.Origin} }

func (b *builder) categories() []category.Category { return b.plan.Trigger.Categories() }

// init makes every category of the run present, even if it ends up with no
// source (it then quits at once).
func (b *builder) init() {
	for _, c := range b.categories() {
		b.plan.Categories[c] = []Step{}
	}
}

func (b *builder) onlyFromServer() {
	b.plan.Rule = RuleOnlyFromServer
	b.init()
	for _, c := range b.categories() {
		b.add(c, Step{Source: server, Why: "agents.only_from_server: update agents update only from the server"})
	}
}

func (b *builder) alwaysFromStandard() {
	b.plan.Rule = RuleAlwaysFromServer
	b.init()
	c := category.Components
	b.add(c, Step{Source: server, Why: "notified of new components and agents.always_from_standard_source: the update source list is disregarded"})
	switch {
	case b.p.DownloadFromOrigin:
		b.add(c, Step{Source: b.origin(), Why: "the server failed and download_from_origin is on"})
	case len(b.eff) > 0 && b.eff[0].Source.Kind == policy.Origin:
		b.add(c, Step{Source: b.origin(), Why: fmt.Sprintf("the server failed and the origin is the first entry of the effective list (entry %d)", b.eff[0].Entry)})
	}
}

func (b *builder) standard(why string) {
	b.plan.Rule = RuleStandard
	b.init()
	for _, c := range b.categories() {
		b.add(c, Step{Source: server, Why: why + ": the server is the standard update source"})
		if c.FromOrigin() && b.p.DownloadFromOrigin {
			b.add(c, Step{Source: b.origin(), Why: "the server failed and download_from_origin is on"})
		}
	}
}

func (b *builder) customized() {
	b.plan.Rule = RuleCustomized
	b.init()
	for _, c := range b.categories() {
		b.customEntries(c)
		b.customFallback(c)
	}
}

// customEntries adds the effective list's entries that can serve c.
func (b *builder) customEntries(c category.Category) {
	for _, m := range b.eff {
		src := m.Source
		switch {
		case src.Kind == policy.Agent && b.ep.Role == RoleAgent && src.AgentID == b.ep.AgentID:
			b.note("entry %d (%s) skipped for %s: an agent never lists itself", m.Entry, src, c)
			continue
		case src.Kind == policy.Origin && !c.FromOrigin():
			b.note("entry %d (origin) skipped for %s: the origin serves components only", m.Entry, c)
			continue
		case src.Kind == policy.URL && !c.FromURL():
			b.note("entry %d (%s) skipped for %s: URL sources serve components only", m.Entry, src, c)
			continue
		}
		why := fmt.Sprintf("entry %d (%s) covers %s", m.Entry, m.Range, m.Address)
		if src.Kind == policy.Origin {
			why += "; its URL is the origin"
		}
		b.add(c, Step{Source: src, Entry: m.Entry, Why: why})
	}
}

// customFallback adds what follows the customized sources of c.
func (b *builder) customFallback(c category.Category) {
	if b.p.FallbackToServer.For(c) {
		b.add(c, Step{Source: server, Why: fmt.Sprintf("fallback_to_server.%s is on: the server, if every customized source fails", c)})
		return
	}
	if !c.FromOrigin() {
		return
	}
	switch {
	case b.p.DownloadFromOrigin:
		b.add(c, Step{Source: b.origin(), Why: "fallback_to_server.components is off and download_from_origin is on"})
	case !b.originListed():
		b.add(c, Step{Source: b.origin(), Why: "fallback_to_server.components is off and the origin is not in the effective list"})
	}
}

func (b *builder) originListed() bool {
	for _, m := range b.eff {
		if m.Source.Kind == policy.Origin {
			return true
		}
	}
	return false
}

func (b *builder) note(format string, args ...any) {
	b.plan.Notes = append(b.plan.Notes, fmt.Sprintf(format, args...))
}
