package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/lint"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/registry"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/trust"
	"github.com/cascade-update/cascade/internal/whatif"
)

// The policy tools (docs/api.md, Policy tools): lint, preview and
// what-if, over the policy in force or an edited one, computed by
// internal/lint and internal/whatif from a snapshot of the registry.

// maxPreviewTargets bounds the targets of one preview.
const maxPreviewTargets = 1000

// parseEdited validates an edited policy exactly as `cascade policy check`
// does; an invalid one is 400 with every problem.
func parseEdited(doc string) (*policy.Policy, error) {
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		he := &httpError{code: http.StatusBadRequest, msg: err.Error()}
		var ve *policy.ValidationError
		if errors.As(err, &ve) {
			he.problems = ve.Problems
		}
		return nil, he
	}
	return p, nil
}

// policyInForce returns the current policy, parsed.
func (s *Server) policyInForce(ctx context.Context) (*policy.Policy, int64, error) {
	pv, err := s.st.CurrentPolicy(ctx)
	if err != nil {
		return nil, 0, err
	}
	p, err := policy.Parse([]byte(pv.Document))
	if err != nil {
		return nil, 0, fmt.Errorf("stored policy version %d: %w", pv.Version, err)
	}
	return p, pv.Version, nil
}

// snapshot reads every endpoint, revoked ones included, page by page.
// With last (every endpoint's last report), an endpoint's components are
// those its last report left installed (installedComponents, as the agent
// report counts them): its status is sent when a run starts.
func (s *Server) snapshot(ctx context.Context, last map[string]store.Report) (*registry.Snapshot, error) {
	reg := &registry.Snapshot{}
	for after := ""; ; {
		page, err := s.st.ListEndpoints(ctx, store.EndpointFilter{After: after, Limit: registryPage, IncludeRevoked: true})
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			se := snapshotEndpoint(e)
			if last != nil {
				rep, ok := last[e.ID]
				se.Components = installedComponents(e, rep, ok)
			}
			reg.Endpoints = append(reg.Endpoints, se)
		}
		if len(page) < registryPage {
			return reg, nil
		}
		after = page[len(page)-1].ID
	}
}

func snapshotEndpoint(e store.Endpoint) registry.Endpoint {
	return registry.Endpoint{ID: e.ID, Hostname: e.Hostname, Role: plan.Role(e.Role), AgentID: e.AgentID, AgentURL: e.AgentURL,
		Addresses: registry.ParseAddresses(e.Addresses), Revoked: !e.Revoked.IsZero(), Components: e.Installed[category.Components]}
}

// handleLintPolicy lints the policy in force (GET) or the one in the body
// (POST: the YAML document, or an api.PutPolicy in JSON, as PUT takes it).
func (s *Server) handleLintPolicy(w http.ResponseWriter, r *http.Request) {
	res, err := s.lintPolicy(r)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) lintPolicy(r *http.Request) (*api.LintResult, error) {
	var p *policy.Policy
	var res api.LintResult
	var err error
	if r.Method == http.MethodPost {
		doc, _, err := policyBody(r)
		if err != nil {
			return nil, err
		}
		if p, err = parseEdited(doc); err != nil {
			return nil, err
		}
	} else if p, res.PolicyVersion, err = s.policyInForce(r.Context()); err != nil {
		return nil, err
	}
	reg, err := s.snapshot(r.Context(), nil)
	if err != nil {
		return nil, err
	}
	for _, e := range reg.Endpoints {
		if !e.Revoked {
			res.Endpoints++
			if e.Role == plan.RoleAgent {
				res.Agents++
			}
		}
	}
	res.Warnings = lint.Check(p, reg)
	if res.Warnings == nil {
		res.Warnings = []lint.Warning{}
	}
	return &res, nil
}

// handlePreviewPolicy compares, for each target, its plan under the
// edited policy with its plan under the policy in force.
func (s *Server) handlePreviewPolicy(w http.ResponseWriter, r *http.Request) {
	res, err := s.previewPolicy(r)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) previewPolicy(r *http.Request) (*api.PreviewResult, error) {
	var req api.PreviewRequest
	if err := decodeJSON(r, maxPolicyBody, &req); err != nil {
		return nil, err
	}
	edited, err := parseEdited(req.Document)
	if err != nil {
		return nil, err
	}
	trig, err := triggerOf(req.Trigger)
	if err != nil {
		return nil, err
	}
	switch n := len(req.Targets); {
	case n == 0:
		return nil, errorf(http.StatusBadRequest, "targets: give at least one endpoint or set of addresses")
	case n > maxPreviewTargets:
		return nil, errorf(http.StatusBadRequest, "targets: at most %d per preview (%d given)", maxPreviewTargets, n)
	}
	current, version, err := s.policyInForce(r.Context())
	if err != nil {
		return nil, err
	}
	var reg *registry.Snapshot // read once, when a target names an endpoint
	res := &api.PreviewResult{PolicyVersion: version, Previews: make([]api.Preview, 0, len(req.Targets))}
	rangeTargets := 0
	for i, t := range req.Targets {
		if len(t.Ranges) > 0 {
			if rangeTargets++; rangeTargets > api.MaxRangeTargets {
				return nil, errorf(http.StatusBadRequest, "targets[%d]: at most %d targets with ranges per preview", i, api.MaxRangeTargets)
			}
			rt, err := parseRangeTarget(t)
			if err != nil {
				return nil, errorf(http.StatusBadRequest, "targets[%d]: %v", i, err)
			}
			p, err := s.previewRanges(r.Context(), current, edited, rt, trig)
			if err != nil {
				return nil, err
			}
			res.Previews = append(res.Previews, p)
			continue
		}
		if t.Start != "" || t.Limit != 0 {
			return nil, errorf(http.StatusBadRequest, "targets[%d]: start and limit go with ranges", i)
		}
		if t.Endpoint != "" && reg == nil {
			if reg, err = s.snapshot(r.Context(), nil); err != nil {
				return nil, err
			}
		}
		rt, tgt, err := resolveTarget(reg, t)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "targets[%d]: %v", i, err)
		}
		res.Previews = append(res.Previews, api.Preview{Target: rt, Comparison: whatif.Compare(current, edited, tgt, trig)})
	}
	return res, nil
}

// resolveTarget returns what a preview target stands for: an enrolled
// endpoint (by id, else by hostname; revoked ones are not previewed) or
// addresses with a role.
func resolveTarget(reg *registry.Snapshot, t api.PreviewTarget) (api.ResolvedTarget, whatif.Target, error) {
	if t.Endpoint != "" {
		if len(t.Addresses) > 0 || t.Role != "" || t.AgentID != "" {
			return api.ResolvedTarget{}, whatif.Target{}, errors.New("give an endpoint or addresses (with role and agent_id), not both")
		}
		e, err := findEndpoint(reg, t.Endpoint)
		if err != nil {
			return api.ResolvedTarget{}, whatif.Target{}, err
		}
		rt := api.ResolvedTarget{EndpointID: e.ID, Hostname: e.Hostname, Role: string(e.Role), AgentID: e.AgentID, Addresses: []string{}}
		for _, a := range e.Addresses {
			rt.Addresses = append(rt.Addresses, a.String())
		}
		return rt, whatif.Target{Role: e.Role, AgentID: e.AgentID, Addresses: e.Addresses}, nil
	}
	if len(t.Addresses) == 0 {
		return api.ResolvedTarget{}, whatif.Target{}, errors.New("give an endpoint (id or hostname) or at least one address")
	}
	role, err := targetRole(t)
	if err != nil {
		return api.ResolvedTarget{}, whatif.Target{}, err
	}
	rt := api.ResolvedTarget{Role: string(role), AgentID: t.AgentID}
	tgt := whatif.Target{Role: role, AgentID: t.AgentID}
	for _, s := range t.Addresses {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return api.ResolvedTarget{}, whatif.Target{}, fmt.Errorf("address %q is not an IP address", s)
		}
		tgt.Addresses = append(tgt.Addresses, a)
		rt.Addresses = append(rt.Addresses, a.String())
	}
	return rt, tgt, nil
}

// targetRole returns the role of a target of addresses or ranges: client
// unless given; an agent id only with role agent.
func targetRole(t api.PreviewTarget) (plan.Role, error) {
	role := plan.RoleClient
	if t.Role != "" {
		var err error
		if role, err = plan.ParseRole(t.Role); err != nil {
			return "", fmt.Errorf("role: %w", err)
		}
	}
	if t.AgentID != "" && (role != plan.RoleAgent || !policy.ValidAgentID(t.AgentID)) {
		return "", fmt.Errorf("agent_id %q: want a valid agent id, with role agent", t.AgentID)
	}
	return role, nil
}

// rangeTarget is a target with ranges, read.
type rangeTarget struct {
	resolved api.ResolvedTarget
	tgt      whatif.Target
	ranges   []policy.Range
	start    netip.Addr
	limit    int
}

// parseRangeTarget reads a target with ranges: each parsed by the
// policy's own parser (policy.ParseRange), as an entry's addresses are.
func parseRangeTarget(t api.PreviewTarget) (*rangeTarget, error) {
	if t.Endpoint != "" || len(t.Addresses) > 0 {
		return nil, errors.New("give ranges, or an endpoint, or the addresses of one endpoint: not several")
	}
	role, err := targetRole(t)
	if err != nil {
		return nil, err
	}
	rt := &rangeTarget{resolved: api.ResolvedTarget{Role: string(role), AgentID: t.AgentID, Addresses: []string{}},
		tgt: whatif.Target{Role: role, AgentID: t.AgentID}, limit: api.DefaultPreviewGroups}
	for _, s := range t.Ranges {
		r, err := policy.ParseRange(s)
		if err != nil {
			return nil, fmt.Errorf("ranges: %w", err)
		}
		rt.ranges = append(rt.ranges, r)
		rt.resolved.Addresses = append(rt.resolved.Addresses, r.String())
	}
	if t.Start != "" {
		if rt.start, err = netip.ParseAddr(strings.TrimSpace(t.Start)); err != nil {
			return nil, fmt.Errorf("start %q is not an IP address", t.Start)
		}
		rt.start = rt.start.Unmap().WithZone("")
	}
	switch {
	case t.Limit < 0 || t.Limit > api.MaxPreviewGroups:
		return nil, fmt.Errorf("limit %d: want 1 to %d groups", t.Limit, api.MaxPreviewGroups)
	case t.Limit > 0:
		rt.limit = t.Limit
	}
	return rt, nil
}

// previewRanges splits the set of rt into groups with the same plans
// under current and edited (whatif.CompareRanges) and counts the enrolled
// endpoints in each from the store's address index.
func (s *Server) previewRanges(ctx context.Context, current, edited *policy.Policy, rt *rangeTarget, t plan.Trigger) (api.Preview, error) {
	spans, next := whatif.CompareRanges(current, edited, rt.ranges, rt.tgt, t, rt.start, rt.limit)
	p := api.Preview{Target: rt.resolved, Groups: make([]api.PreviewGroup, len(spans))}
	if next.IsValid() {
		p.Next = next.String()
	}
	rs := make([]store.AddrRange, len(spans))
	for i, sp := range spans {
		rs[i] = store.AddrRange{From: sp.Range.From, To: sp.Range.To}
		p.Groups[i] = api.PreviewGroup{Addresses: sp.Range.String(), From: sp.Range.From.String(), To: sp.Range.To.String(), Comparison: sp.Comparison}
		if len(sp.Changed) > 0 {
			p.ChangedGroups++
		}
	}
	counts, err := s.st.CountEndpointsInRanges(ctx, rs)
	if err != nil {
		return api.Preview{}, err
	}
	for i, n := range counts {
		p.Groups[i].Endpoints = n
	}
	return p, nil
}

// findEndpoint returns the enrolled endpoint with id or, failing that,
// the only one with that hostname.
func findEndpoint(reg *registry.Snapshot, name string) (*registry.Endpoint, error) {
	var byHost []*registry.Endpoint
	for i := range reg.Endpoints {
		e := &reg.Endpoints[i]
		if e.ID == name {
			if e.Revoked {
				return nil, fmt.Errorf("endpoint %s is revoked", name)
			}
			return e, nil
		}
		if !e.Revoked && strings.EqualFold(e.Hostname, name) {
			byHost = append(byHost, e)
		}
	}
	switch len(byHost) {
	case 0:
		return nil, fmt.Errorf("no enrolled endpoint has the id or hostname %q", name)
	case 1:
		return byHost[0], nil
	}
	ids := make([]string, len(byHost))
	for i, e := range byHost {
		ids[i] = e.ID
	}
	return nil, fmt.Errorf("hostname %q names %d endpoints (%s): give the endpoint id", name, len(ids), strings.Join(ids, ", "))
}

func triggerOf(s string) (plan.Trigger, error) {
	if s == "" {
		return plan.DefaultTrigger, nil
	}
	t, err := plan.ParseTrigger(s)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "trigger: %v", err)
	}
	return t, nil
}

// handleWhatIfPolicy computes where every enrolled endpoint would end
// with the given sources down, and the bytes each party would carry for
// the component versions deployed now.
func (s *Server) handleWhatIfPolicy(w http.ResponseWriter, r *http.Request) {
	res, err := s.whatIfPolicy(r)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) whatIfPolicy(r *http.Request) (*api.WhatIfResult, error) {
	var req api.WhatIfRequest
	if err := decodeJSON(r, maxPolicyBody, &req); err != nil {
		return nil, err
	}
	out := &api.WhatIfResult{}
	var p *policy.Policy
	var err error
	if req.Document != "" {
		p, err = parseEdited(req.Document)
	} else {
		p, out.PolicyVersion, err = s.policyInForce(r.Context())
	}
	if err != nil {
		return nil, err
	}
	trig, err := triggerOf(req.Trigger)
	if err != nil {
		return nil, err
	}
	down, err := whatif.ParseDown(req.Down)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	deployed, notes, err := s.deployedSizes(r.Context())
	if err != nil {
		return nil, err
	}
	last, err := s.lastReports(r.Context())
	if err != nil {
		return nil, err
	}
	reg, err := s.snapshot(r.Context(), last)
	if err != nil {
		return nil, err
	}
	out.Result = whatif.Run(whatif.Input{Policy: p, Registry: reg, Trigger: trig, Down: down, Deployed: deployed})
	out.Notes = notes
	return out, nil
}

// deployedSizes returns the component versions deployed now with the
// total length of their files, as the signed targets metadata of the
// mirrored vendor repository gives it (no file is read). What it cannot
// size is left out and said in notes.
func (s *Server) deployedSizes(ctx context.Context) (map[string]whatif.Component, []string, error) {
	versions, err := s.deployedVersions(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]whatif.Component{}
	if len(versions) == 0 {
		return out, []string{"no component version is deployed yet: there are no bytes to count"}, nil
	}
	f := fetch.New(fetch.Options{Transport: http.NewFileTransport(http.Dir(s.sync.dir)), MinRate: -1})
	v, err := s.sync.trust.Probe(ctx, trust.Source{Name: "mirrored copy", Base: "http://mirror.local/"}, f)
	if err != nil {
		return out, []string{fmt.Sprintf("the mirrored vendor repository cannot be read (%v): bytes are not counted", err)}, nil
	}
	idx, err := v.Index(ctx, "components")
	if err != nil {
		if failure.ClassOf(err) != failure.NotFound {
			return out, []string{fmt.Sprintf("the mirrored components index cannot be read (%v): bytes are not counted", err)}, nil
		}
		idx = &index.Index{Items: map[string]index.Item{}}
	}
	var notes []string
	names := make([]string, 0, len(versions))
	for name := range versions {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		ver := versions[name]
		files, ok := idx.Items[name].FilesOf(ver)
		if !ok {
			notes = append(notes, fmt.Sprintf("component %s: deployed version %s is no longer in the mirrored copy: its bytes are not counted", name, ver))
			continue
		}
		var n int64
		for _, path := range files {
			tf, err := v.Target(ctx, path)
			if err != nil {
				return nil, nil, fmt.Errorf("size component %s %s: %w", name, ver, err)
			}
			n += tf.Length
		}
		out[name] = whatif.Component{Version: ver, Bytes: n}
	}
	return out, notes, nil
}
