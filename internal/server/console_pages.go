package server

import (
	"context"
	"maps"
	"slices"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

// Agents implements console.Backend: the agent analytical report with
// the first members of each agent by hostname (the registry view: the
// function GET /api/v1/agents/report answers with),
// and each enrolled update agent's own health as GET /api/v1/agents
// shows it.
func (b *consoleBackend) Agents(ctx context.Context) (*console.Agents, error) {
	s := b.s
	view, err := s.view.get(ctx)
	if err != nil {
		return nil, err
	}
	// A copy: the page sorts the members it shows.
	rep, own := *view.report, view.own
	rep.Agents = slices.Clone(rep.Agents)
	for i := range rep.Agents {
		rep.Agents[i].Members = slices.Clone(rep.Agents[i].Members)
	}
	rep.Unassigned.Members = slices.Clone(rep.Unassigned.Members)
	agents, err := s.st.ListEndpoints(ctx, store.EndpointFilter{Role: store.RoleAgent})
	if err != nil {
		return nil, err
	}
	out := &console.Agents{Report: &rep, Health: map[string]console.AgentHealth{}}
	for _, a := range agents {
		m := own[a.ID]
		out.Health[a.AgentID] = console.AgentHealth{EndpointID: a.ID, Hostname: a.Hostname, Addresses: a.Addresses,
			LastSeen: a.LastSeen, Connected: s.connected(a.ID), Installed: a.Installed, State: m.State, Sources: m.Sources}
	}
	return out, nil
}

// Content implements console.Backend: the components as GET
// /api/v1/content/components lists them, the versions the mirrored copy
// holds (what POST .../deploy accepts), the programs mirrored and the
// program approvals of every domain (GET /api/v1/domains/{domain}/programs),
// and the last sync.
func (b *consoleBackend) Content(ctx context.Context) (*console.Content, error) {
	s := b.s
	comps, err := s.st.ListComponents(ctx)
	if err != nil {
		return nil, err
	}
	out := &console.Content{LastSync: s.sync.Last(), Syncing: s.sync.Progress()}
	idx, err := s.content.index(ctx, "components")
	if err != nil {
		out.MirrorError = err.Error()
	}
	// A programs index that cannot be read lists no program (the
	// components' MirrorError says why).
	if out.Programs, out.Approvals, _, err = s.consolePrograms(ctx); err != nil {
		return nil, err
	}
	for _, c := range comps {
		cc := console.ContentComponent{Component: componentJSON(c)}
		if idx != nil {
			cc.Mirrored = idx.Items[c.Name].Kept
		}
		out.Components = append(out.Components, cc)
	}
	return out, nil
}

// consolePrograms is what the content page and the dashboard show of the
// programs: the programs the mirrored copy holds, by name, each with its
// versions newest first (what PUT /api/v1/domains/{domain}/programs/{program}
// accepts), and the program approvals of every domain as GET
// /api/v1/domains/{domain}/programs answers them, ordered by domain then
// program. mirrorErr says why the mirrored copy could not be read (then
// no program is listed); err is a failure of the store.
func (s *Server) consolePrograms(ctx context.Context) (progs []console.ContentProgram, approvals []api.Approval, mirrorErr, err error) {
	if pidx, err := s.sync.localIndex(ctx, "programs"); err != nil {
		mirrorErr = err
	} else {
		for _, name := range slices.Sorted(maps.Keys(pidx.Items)) {
			progs = append(progs, console.ContentProgram{Name: name, Mirrored: pidx.Items[name].Kept})
		}
	}
	as, err := s.st.ProgramApprovals(ctx, "")
	if err != nil {
		return nil, nil, nil, err
	}
	for _, a := range as {
		approvals = append(approvals, approvalJSON(a))
	}
	return progs, approvals, mirrorErr, nil
}
