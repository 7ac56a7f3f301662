package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// maxPage is the most endpoints or reports one list request returns.
const maxPage = 10000

func endpointJSON(e store.Endpoint) api.Endpoint {
	out := api.Endpoint{ID: e.ID, Hostname: e.Hostname, Domain: e.Domain, Role: string(e.Role), AgentID: e.AgentID,
		AgentURL: e.AgentURL, Addresses: e.Addresses, Enrolled: e.Enrolled, LastSeen: e.LastSeen,
		Revoked: api.TimePtr(e.Revoked), Installed: map[string]map[string]string{}}
	for c, items := range e.Installed {
		out.Installed[string(c)] = items
	}
	return out
}

// EndpointList is the page of endpoints GET /api/v1/endpoints answers.
type EndpointList = api.EndpointList

func (s *Server) handleListEndpoints(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(r, "limit", 1000)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	revoked, err := queryBool(r, "revoked")
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	f := store.EndpointFilter{Domain: q.Get("domain"), Role: store.Role(q.Get("role")), After: q.Get("after"),
		Limit: limit, IncludeRevoked: revoked}
	es, err := s.st.ListEndpoints(r.Context(), f)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := api.EndpointList{Endpoints: make([]api.Endpoint, len(es))}
	for i, e := range es {
		out.Endpoints[i] = endpointJSON(e)
		out.Endpoints[i].Connected = s.connected(e.ID)
	}
	if len(es) == limit {
		out.Next = es[len(es)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetEndpoint(w http.ResponseWriter, r *http.Request) {
	e, err := s.st.Endpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := endpointJSON(e)
	out.Connected = s.connected(e.ID)
	if rep, err := s.st.LastReport(r.Context(), e.ID); err == nil {
		rj := reportJSON(rep)
		out.LastReport = &rj
	}
	writeJSON(w, http.StatusOK, out)
}

// handleSetRole designates an endpoint as an update agent (with its agent
// id and, optionally, the URL it serves at) or as a client. The agent URL
// becomes the one given, or none: a URL reported earlier is never kept,
// so a designation cannot bring back a stale or client-chosen one.
func (s *Server) handleSetRole(w http.ResponseWriter, r *http.Request) {
	var req api.SetRole
	if err := decodeJSON(r, maxSmallBody, &req); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	id := r.PathValue("id")
	agentURL := ""
	if req.AgentURL != nil {
		agentURL = *req.AgentURL
	}
	if agentURL != "" && store.Role(req.Role) != store.RoleAgent {
		writeError(w, s.log, r, errorf(http.StatusBadRequest, "agent_url: only update agents (role agent) serve content"), true)
		return
	}
	if agentURL != "" && !policy.SameURL(agentURL, agentURL) {
		writeError(w, s.log, r, errorf(http.StatusBadRequest, "agent_url %q is not an absolute http(s) URL", agentURL), true)
		return
	}
	e, err := s.st.SetEndpointRole(r.Context(), id, store.Role(req.Role), req.AgentID)
	if err == nil && e.AgentURL != agentURL {
		e, err = s.st.UpdateEndpointStatus(r.Context(), id, store.StatusUpdate{Seen: e.LastSeen, AgentURL: &agentURL})
	}
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	s.creds.forget(id)
	// Its event stream was opened as what it was: close it, so that it
	// reconnects (authenticated again) as what it now is.
	s.disconnect(id)
	*noteAudit(r) = auditNote{summary: fmt.Sprintf("%s (%s): role %s %s", e.Hostname, id, e.Role, e.AgentID), after: req}
	s.log.Info("endpoint role changed", "endpoint", id, "role", e.Role, "agent_id", e.AgentID, "by", adminOf(r).Name)
	writeJSON(w, http.StatusOK, endpointJSON(e))
}

// handleRevokeEndpoint revokes an endpoint's credential: its calls are
// refused from now on and its event stream is closed.
func (s *Server) handleRevokeEndpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.st.RevokeEndpoint(r.Context(), id); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	s.creds.forget(id)
	s.disconnect(id)
	e, err := s.st.Endpoint(r.Context(), id)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	s.log.Info("endpoint revoked", "endpoint", id, "by", adminOf(r).Name)
	writeJSON(w, http.StatusOK, endpointJSON(e))
}

func (s *Server) handleListAgents(w http.ResponseWriter, r *http.Request) {
	es, err := s.st.ListEndpoints(r.Context(), store.EndpointFilter{Role: store.RoleAgent})
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := make([]api.AgentInfo, len(es))
	for i, e := range es {
		out[i] = api.AgentInfo{AgentID: e.AgentID, EndpointID: e.ID, Hostname: e.Hostname, URL: e.AgentURL,
			LastSeen: e.LastSeen, Connected: s.connected(e.ID)}
	}
	writeJSON(w, http.StatusOK, out)
}

func tokenJSON(t store.EnrollmentToken) api.Token {
	return api.Token{ID: t.ID, Domain: t.Domain, MaxUses: t.MaxUses, Uses: t.Uses, Expires: api.TimePtr(t.Expires),
		Created: t.Created, Revoked: api.TimePtr(t.Revoked), Agents: t.Agents}
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.st.ListEnrollmentTokens(r.Context(), r.URL.Query().Get("domain"))
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := make([]api.Token, len(ts))
	for i, t := range ts {
		out[i] = tokenJSON(t)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleCreateToken makes an enrollment token: single use unless uses
// says otherwise, expiring after expires_in if given, enrolling update
// agents only if agents is set. The secret is in the answer only.
func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req api.TokenRequest
	if err := decodeJSON(r, maxSmallBody, &req); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	t := store.EnrollmentToken{Domain: req.Domain, MaxUses: 1, Agents: req.Agents}
	if req.Uses != nil {
		t.MaxUses = *req.Uses
	}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			writeError(w, s.log, r, errorf(http.StatusBadRequest, "expires_in %q is not a positive duration", req.ExpiresIn), true)
			return
		}
		t.Expires = s.now().Add(d)
	}
	secret, hash, err := store.NewSecret(enrollPrefix)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	t.Hash = hash
	t, err = s.st.CreateEnrollmentToken(r.Context(), t)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := tokenJSON(t)
	*noteAudit(r) = auditNote{target: t.ID, summary: fmt.Sprintf("enrollment token %s for domain %s (uses %d, agents %t)", t.ID, t.Domain, t.MaxUses, t.Agents), after: out}
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	if err := s.st.RevokeEnrollmentToken(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func adminTokenJSON(t store.AdminToken) api.AdminToken {
	return api.AdminToken{ID: t.ID, Name: t.Name, Created: t.Created, Revoked: api.TimePtr(t.Revoked)}
}

func (s *Server) handleListAdminTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.st.ListAdminTokens(r.Context())
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := make([]api.AdminToken, len(ts))
	for i, t := range ts {
		out[i] = adminTokenJSON(t)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCreateAdminToken(w http.ResponseWriter, r *http.Request) {
	var req api.AdminToken
	if err := decodeJSON(r, maxSmallBody, &req); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	t, secret, err := CreateAdminToken(r.Context(), s.st, strings.TrimSpace(req.Name))
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := adminTokenJSON(t)
	*noteAudit(r) = auditNote{target: t.ID, summary: fmt.Sprintf("admin token %s (%s)", t.ID, t.Name), after: out}
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) handleRevokeAdminToken(w http.ResponseWriter, r *http.Request) {
	if err := s.st.RevokeAdminToken(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
