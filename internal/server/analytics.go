package server

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/version"
)

// handleAgentReport answers with the update agent analytical report
// (?members=true lists each agent's endpoints).
func (s *Server) handleAgentReport(w http.ResponseWriter, r *http.Request) {
	members, err := queryBool(r, "members")
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	rep, err := s.agentReport(r.Context(), members)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// agentReport computes, for each update agent, the endpoints whose
// effective list (plan.Effective with the current policy and their
// reported addresses; an agent never lists itself) starts with it, their
// state against the deployed component versions, and where their last
// runs actually updated from.
func (s *Server) agentReport(ctx context.Context, members bool) (*api.AgentReport, error) {
	return s.agentReportSeeing(ctx, members, nil)
}

// agentReportSeeing is agentReport that also hands the registry it read
// to seen (when not nil): the registry view keeps what the endpoint list
// sorts by.
func (s *Server) agentReportSeeing(ctx context.Context, members bool, seen func([]store.Endpoint)) (*api.AgentReport, error) {
	pv, err := s.st.CurrentPolicy(ctx)
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse([]byte(pv.Document))
	if err != nil {
		return nil, fmt.Errorf("agent report: stored policy version %d: %w", pv.Version, err)
	}
	deployed, err := s.deployedVersions(ctx)
	if err != nil {
		return nil, err
	}
	eps, last, err := s.registry(ctx)
	if err != nil {
		return nil, err
	}
	if seen != nil {
		seen(eps)
	}
	out := &api.AgentReport{Generated: s.now().UTC(), PolicyVersion: pv.Version, Deployed: deployed,
		Unassigned: newAnalysis("")}
	groups := map[string]*api.AgentAnalysis{}
	for _, e := range eps {
		if e.Role == store.RoleAgent {
			g := newAnalysis(e.AgentID)
			g.EndpointID, g.Hostname, g.URL, g.InDirectory = e.ID, e.Hostname, e.AgentURL, true
			groups[e.AgentID] = &g
		}
	}
	for _, e := range eps {
		g := &out.Unassigned
		if id := firstAgent(p, e); id != "" {
			if groups[id] == nil {
				ng := newAnalysis(id)
				groups[id] = &ng
			}
			g = groups[id]
		}
		rep, ok := last[e.ID]
		m := member(e, rep, ok, deployed)
		g.Endpoints++
		g.States[m.State]++
		g.Bytes += m.Bytes
		g.FullBytes += m.FullBytes
		for c, src := range m.Sources {
			if g.Sources[c] == nil {
				g.Sources[c] = map[string]int{}
			}
			g.Sources[c][src]++
		}
		if members {
			g.Members = append(g.Members, m)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		out.Agents = append(out.Agents, *groups[id])
	}
	return out, nil
}

func newAnalysis(agentID string) api.AgentAnalysis {
	return api.AgentAnalysis{AgentID: agentID, Sources: map[string]map[string]int{},
		States: map[string]int{api.StateUpToDate: 0, api.StateBehind: 0, api.StateFailing: 0, api.StateNoReport: 0}}
}

// firstAgent returns the agent id the endpoint's effective list starts
// with, or "" when it starts with something else or is empty.
func firstAgent(p *policy.Policy, e store.Endpoint) string {
	addrs := make([]netip.Addr, 0, len(e.Addresses))
	for _, a := range e.Addresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			addrs = append(addrs, ip.Unmap())
		}
	}
	eff, _ := plan.Effective(p, addrs)
	for _, m := range eff {
		if m.Source.Kind == policy.Agent && e.Role == store.RoleAgent && m.Source.AgentID == e.AgentID {
			continue // an agent never lists itself
		}
		if m.Source.Kind == policy.Agent {
			return m.Source.AgentID
		}
		return ""
	}
	return ""
}

// member classifies one endpoint from its last report.
func member(e store.Endpoint, rep store.Report, ok bool, deployed map[string]string) api.AgentMember {
	m := api.AgentMember{EndpointID: e.ID, Hostname: e.Hostname, State: api.StateNoReport}
	if !ok {
		return m
	}
	m.Sources = map[string]string{}
	installed := installedComponents(e, rep, ok)
	for _, c := range rep.Categories {
		src := c.Source
		if src == "" {
			src = "none (" + c.Result + ")"
		}
		m.Sources[string(c.Category)] = src
		m.Bytes += c.Bytes
		m.FullBytes += max(c.FullBytes, c.Bytes) // older endpoints do not say
	}
	if strings.EqualFold(rep.Result, "failed") {
		m.State = api.StateFailing
		return m
	}
	for name, want := range deployed {
		have := installed[name]
		if c, err := version.Compare(have, want); have == "" || err != nil || c < 0 {
			if m.Behind == nil {
				m.Behind = map[string]string{}
			}
			m.Behind[name] = have
		}
	}
	m.State = api.StateUpToDate
	if len(m.Behind) > 0 {
		m.State = api.StateBehind
	}
	return m
}

// deployedVersions maps each component to its deployed version.
func (s *Server) deployedVersions(ctx context.Context) (map[string]string, error) {
	comps, err := s.st.ListComponents(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, c := range comps {
		if c.Deployed != "" {
			out[c.Name] = c.Deployed
		}
	}
	return out, nil
}

// registryPage is the page size of the analytics' reads.
const registryPage = 5000

// registry reads every endpoint that is not revoked and the last report
// of each, page by page.
func (s *Server) registry(ctx context.Context) ([]store.Endpoint, map[string]store.Report, error) {
	var eps []store.Endpoint
	for after := ""; ; {
		page, err := s.st.ListEndpoints(ctx, store.EndpointFilter{After: after, Limit: registryPage})
		if err != nil {
			return nil, nil, err
		}
		eps = append(eps, page...)
		if len(page) < registryPage {
			break
		}
		after = page[len(page)-1].ID
	}
	last, err := s.lastReports(ctx)
	if err != nil {
		return nil, nil, err
	}
	return eps, last, nil
}

// lastReports returns every endpoint's last report, by endpoint id.
func (s *Server) lastReports(ctx context.Context) (map[string]store.Report, error) {
	last := map[string]store.Report{}
	for after := ""; ; {
		page, err := s.st.LastReports(ctx, store.EndpointFilter{After: after, Limit: registryPage})
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			last[r.EndpointID] = r
		}
		if len(page) < registryPage {
			return last, nil
		}
		after = page[len(page)-1].EndpointID
	}
}

// installedComponents are the component versions e runs: those its last
// report (rep, if ok) left installed, else those of its last status.
func installedComponents(e store.Endpoint, rep store.Report, ok bool) map[string]string {
	if ok {
		for _, c := range rep.Categories {
			if c.Category == category.Components && c.VersionsAfter != nil {
				return c.VersionsAfter
			}
		}
	}
	return e.Installed[category.Components]
}
