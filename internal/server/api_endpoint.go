package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/ratelimit"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// handleEnroll registers an endpoint with an enrollment token and hands
// it its credential, the trust roots, the current policy and the agent
// directory.
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	if ok, retry := s.enrollLimit.Allow(ratelimit.AddrKey(r.RemoteAddr)); !ok {
		writeError(w, s.log, r, tooMany(retry, "too many enrollment requests from this address; try again in %s", retry), false)
		return
	}
	var req api.EnrollRequest
	if err := decodeJSON(r, maxEnrollBody, &req); err != nil {
		writeError(w, s.log, r, err, false)
		return
	}
	res, err := s.enroll(r.Context(), req)
	if err != nil {
		writeError(w, s.log, r, err, false)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

func (s *Server) enroll(ctx context.Context, req api.EnrollRequest) (*api.EnrollResponse, error) {
	if req.Token == "" {
		return nil, errorf(http.StatusUnauthorized, "enrollment token required")
	}
	role := store.Role(req.Role)
	if role == "" {
		role = store.RoleClient
	}
	if req.AgentURL != "" && role != store.RoleAgent {
		return nil, errorf(http.StatusBadRequest, "agent_url: only update agents (role agent) serve content")
	}
	if req.AgentURL != "" && !policy.SameURL(req.AgentURL, req.AgentURL) {
		return nil, errorf(http.StatusBadRequest, "agent_url %q is not an absolute http(s) URL", req.AgentURL)
	}
	secret, hash, err := store.NewSecret(endpointPrefix)
	if err != nil {
		return nil, err
	}
	e, err := s.st.Enroll(ctx, store.HashSecret(req.Token), store.Endpoint{Hostname: req.Hostname, Role: role,
		AgentID: req.AgentID, AgentURL: req.AgentURL, Addresses: req.Addresses, CredentialHash: hash})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errorf(http.StatusForbidden, "unknown enrollment token")
	case errors.Is(err, store.ErrRevoked):
		return nil, errorf(http.StatusForbidden, "enrollment token revoked")
	case errors.Is(err, store.ErrExpired):
		return nil, errorf(http.StatusForbidden, "enrollment token expired")
	case errors.Is(err, store.ErrExhausted):
		return nil, errorf(http.StatusForbidden, "enrollment token used up")
	case errors.Is(err, store.ErrForbiddenRole):
		return nil, errorf(http.StatusForbidden, "enrollment token does not allow update agents (create one with: cascade server token create --agents)")
	case err != nil:
		return nil, err
	}
	p, err := s.st.CurrentPolicy(ctx)
	if err != nil {
		return nil, err
	}
	agents, err := s.directory(ctx)
	if err != nil {
		return nil, err
	}
	s.log.Info("endpoint enrolled", "endpoint", e.ID, "hostname", e.Hostname, "domain", e.Domain, "role", e.Role)
	return &api.EnrollResponse{EndpointID: e.ID, Credential: secret, Domain: e.Domain, Role: string(e.Role),
		AgentID: e.AgentID, VendorRoot: s.vendorRoot, SiteRoot: s.siteRoot, Policy: p.Document, Agents: agents,
		ServerKeys: s.keys.get(ctx)}, nil
}

// directory returns the agent directory: every update agent that has a
// URL.
func (s *Server) directory(ctx context.Context) ([]api.Agent, error) {
	dir, err := s.st.AgentDirectory(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Agent, 0, len(dir))
	for _, a := range dir {
		if a.URL != "" {
			out = append(out, api.Agent{AgentID: a.AgentID, URL: a.URL})
		}
	}
	return out, nil
}

// handleStatus records an endpoint's heartbeat and answers with what the
// server knows of it and the agent directory.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	var req api.StatusRequest
	if err := decodeJSON(r, maxSmallBody, &req); err != nil {
		writeError(w, s.log, r, err, false)
		return
	}
	u, err := statusUpdate(req, endpointOf(r).Role)
	if err != nil {
		writeError(w, s.log, r, err, false)
		return
	}
	e, err := s.st.UpdateEndpointStatus(r.Context(), endpointOf(r).ID, u)
	if err == nil {
		var agents []api.Agent
		if agents, err = s.directory(r.Context()); err == nil {
			writeJSON(w, http.StatusOK, api.StatusResponse{EndpointID: e.ID, Domain: e.Domain, Role: string(e.Role),
				AgentID: e.AgentID, Agents: agents, ServerKeys: s.keys.get(r.Context())})
			return
		}
	}
	if errors.Is(err, store.ErrRevoked) {
		err = errorf(http.StatusUnauthorized, "endpoint credential revoked")
	}
	writeError(w, s.log, r, err, false)
}

// statusUpdate is what a heartbeat changes. Only an update agent may
// report the URL it serves at: a client's would enter the agent
// directory if it were designated later.
func statusUpdate(req api.StatusRequest, role store.Role) (store.StatusUpdate, error) {
	var u store.StatusUpdate
	if req.Hostname != "" {
		u.Hostname = &req.Hostname
	}
	if req.Addresses != nil {
		u.Addresses = req.Addresses
	}
	if req.AgentURL != "" {
		if role != store.RoleAgent {
			return u, errorf(http.StatusBadRequest, "agent_url: only update agents report the URL they serve at; this endpoint is a %s", role)
		}
		if !policy.SameURL(req.AgentURL, req.AgentURL) {
			return u, errorf(http.StatusBadRequest, "agent_url %q is not an absolute http(s) URL", req.AgentURL)
		}
		u.AgentURL = &req.AgentURL
	}
	if req.Installed != nil {
		u.Installed = store.Installed{}
		for c, items := range req.Installed {
			cat, err := category.Parse(c)
			if err != nil {
				return u, errorf(http.StatusBadRequest, "installed: %v", err)
			}
			u.Installed[cat] = items
		}
	}
	return u, nil
}

// handleAgentDirectory answers with the agent directory.
func (s *Server) handleAgentDirectory(w http.ResponseWriter, r *http.Request) {
	agents, err := s.directory(r.Context())
	if err != nil {
		writeError(w, s.log, r, err, false)
		return
	}
	writeJSON(w, http.StatusOK, agents)
}

// handleReport stores an update report (batched with concurrent uploads)
// and, when it answers a notification, marks its delivery done or failed.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	e := endpointOf(r)
	release, err := s.reports.admit(e.ID, uploadSize(r))
	if err != nil {
		writeError(w, s.log, r, err, false)
		return
	}
	defer release()
	var up api.ReportUpload
	if err := decodeJSON(r, maxReportBody, &up); err != nil {
		writeError(w, s.log, r, err, false)
		return
	}
	rec, rep, err := storedReport(e.ID, up.Report)
	if err != nil {
		writeError(w, s.log, r, err, false)
		return
	}
	if rec, err = s.ingest.Add(r.Context(), rec); err != nil {
		writeError(w, s.log, r, err, false)
		return
	}
	if up.Notification != "" {
		s.delivered(r.Context(), up.Notification, e, rep)
	}
	writeJSON(w, http.StatusCreated, api.ReportAccepted{ID: rec.ID})
}

// storedReport decodes an uploaded report and returns the record to
// store. The stored document leaves out the plan's steps (up to 1024 per
// category, recomputable with `cascade explain`) to keep history small.
func storedReport(endpointID string, raw json.RawMessage) (store.Report, *report.Report, error) {
	var rep report.Report
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&rep); err != nil {
		return store.Report{}, nil, errorf(http.StatusBadRequest, "invalid report: %v", err)
	}
	if err := rep.Validate(); err != nil {
		return store.Report{}, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	rec := store.Report{EndpointID: endpointID, Trigger: string(rep.Trigger), Started: rep.Started,
		Finished: rep.Finished, Result: string(rep.Result)}
	for _, c := range rep.Categories {
		rec.Categories = append(rec.Categories, store.CategoryReport{Category: c.Category, Result: string(c.Result),
			Source: c.Source, VersionsBefore: c.Before, VersionsAfter: c.After, Bytes: c.Bytes, FullBytes: c.FullBytes})
	}
	slim := rep
	slim.Plan.Categories, slim.Plan.Effective, slim.Plan.Notes = nil, nil, nil
	doc, err := json.Marshal(slim)
	if err != nil {
		return store.Report{}, nil, errorf(http.StatusBadRequest, "invalid report: %v", err)
	}
	rec.Document = doc
	return rec, &rep, nil
}
