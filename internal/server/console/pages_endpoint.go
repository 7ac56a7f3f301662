package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// An endpoint's page (/endpoints/{id}) reads everything through the
// admin API's own handlers (Backend.Do): the endpoint (GET
// /api/v1/endpoints/{id}), its plan under the policy in force explained
// by the preview's code (POST /api/v1/policy/preview with the policy in
// force as the edited one), its last reports (GET
// /api/v1/endpoints/{id}/reports, each document by GET
// /api/v1/reports/{id}); its actions post through them too, so the audit
// log records each.

// endpointReports is how many of an endpoint's last reports its page
// shows.
const endpointReports = 10

// endpointActions are the changes an endpoint's page makes.
var endpointActions = []string{"notify", "designate", "undesignate", "revoke"}

// endpointReport is one report on an endpoint's page: the stored summary
// and, when it can be read, the document the endpoint sent.
type endpointReport struct {
	api.Report
	Doc      *report.Report
	DocError string
}

// Saved is how many bytes deltas saved in c, one of the report's
// categories (0 without deltas).
func (endpointReport) Saved(c *report.Category) int64 {
	if c.FullBytes > c.Bytes {
		return c.FullBytes - c.Bytes
	}
	return 0
}

// call runs an admin API GET (or a POST computing only) as the page's
// account and decodes its answer into out; an answer other than want is
// an error carrying the API's message.
func (c *Console) call(ctx context.Context, r *http.Request, method, path string, body any, want int, out any) error {
	code, data, err := c.be.Do(ctx, Actor(accountOf(r)), method, path, body)
	if err != nil {
		return err
	}
	if code != want {
		return &apiError{code: code, msg: apiMessage(data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("read the answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// apiError is an admin API answer other than the one expected.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func (c *Console) endpointPage(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	var ep api.Endpoint
	if err := c.call(ctx, r, http.MethodGet, "/api/v1/endpoints/"+url.PathEscape(id), nil, http.StatusOK, &ep); err != nil {
		c.apiFail(w, r, err)
		return
	}
	data := map[string]any{"E": ep, "Done": r.URL.Query().Get("done"), "Notification": r.URL.Query().Get("notification")}
	// The plan under the policy in force, explained as the preview
	// explains it (the policy in force previewed against itself).
	if ep.Revoked == nil {
		var pol api.Policy
		var res api.PreviewResult
		err := c.call(ctx, r, http.MethodGet, "/api/v1/policy", nil, http.StatusOK, &pol)
		if err == nil {
			// The endpoint's own role, agent id and addresses: the same
			// plan as naming the endpoint, without reading the registry.
			tgt := api.PreviewTarget{Addresses: ep.Addresses, Role: ep.Role, AgentID: ep.AgentID}
			if len(ep.Addresses) == 0 {
				tgt = api.PreviewTarget{Endpoint: ep.ID}
			}
			err = c.call(ctx, r, http.MethodPost, api.PathPolicyPreview, api.PreviewRequest{Document: pol.Document,
				Targets: []api.PreviewTarget{tgt}}, http.StatusOK, &res)
		}
		switch {
		case err != nil:
			data["PlanError"] = "The plan could not be computed: " + err.Error()
		case len(res.Previews) != 1:
			data["PlanError"] = fmt.Sprintf("The plan could not be computed: the preview answered %d plans.", len(res.Previews))
		default:
			data["Plan"] = res.Previews[0].Current
			data["PolicyVersion"] = res.PolicyVersion
		}
	}
	var reps []api.Report
	if err := c.call(ctx, r, http.MethodGet, fmt.Sprintf("/api/v1/endpoints/%s/reports?limit=%d", url.PathEscape(ep.ID), endpointReports),
		nil, http.StatusOK, &reps); err != nil {
		c.apiFail(w, r, err)
		return
	}
	views := make([]endpointReport, len(reps))
	for i, rep := range reps {
		views[i].Report = rep
		var full api.Report
		if err := c.call(ctx, r, http.MethodGet, "/api/v1/reports/"+url.PathEscape(rep.ID), nil, http.StatusOK, &full); err != nil {
			views[i].DocError = err.Error()
			continue
		}
		var doc report.Report
		if err := json.Unmarshal(full.Document, &doc); err != nil {
			views[i].DocError = "the report's document cannot be read: " + err.Error()
			continue
		}
		views[i].Doc = &doc
	}
	data["Reports"] = views
	c.render(w, r, http.StatusOK, "endpoint", data)
}

// apiFail shows an admin API refusal with its status, anything else as a
// failure.
func (c *Console) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		c.errorPage(w, r, ae.code, ae.msg)
		return
	}
	c.fail(w, r, err)
}

// confirmEndpoint shows what an action on an endpoint will do and asks to
// confirm it; the confirmation posts to the same path.
func (c *Console) confirmEndpoint(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if !slices.Contains(endpointActions, action) {
		c.errorPage(w, r, http.StatusNotFound, "No such page.")
		return
	}
	var ep api.Endpoint
	if err := c.call(r.Context(), r, http.MethodGet, "/api/v1/endpoints/"+url.PathEscape(id), nil, http.StatusOK, &ep); err != nil {
		c.apiFail(w, r, err)
		return
	}
	q := r.URL.Query()
	agentID, agentURL := strings.TrimSpace(q.Get("agent_id")), strings.TrimSpace(q.Get("agent_url"))
	if action == "designate" && !policy.ValidAgentID(agentID) {
		c.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("Agent id %q is not valid: give the id the policy will name it by (agent:ID).", agentID))
		return
	}
	c.render(w, r, http.StatusOK, "endpoint_confirm", map[string]any{"E": ep, "Action": action, "AgentID": agentID, "AgentURL": agentURL})
}

// changeEndpoint performs a confirmed action through the admin API's own
// handler (its rules and its audit entry) and goes back to the
// endpoint's page.
func (c *Console) changeEndpoint(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	id, action := r.PathValue("id"), r.PathValue("action")
	base := "/api/v1/endpoints/" + url.PathEscape(id)
	var method, path string
	var body any
	want := http.StatusOK
	switch action {
	case "notify":
		method, path, want = http.MethodPost, base+"/notify", http.StatusCreated
	case "designate":
		req := api.SetRole{Role: string(store.RoleAgent), AgentID: strings.TrimSpace(r.PostFormValue("agent_id"))}
		if u := strings.TrimSpace(r.PostFormValue("agent_url")); u != "" {
			req.AgentURL = &u
		}
		method, path, body = http.MethodPut, base+"/role", req
	case "undesignate":
		method, path, body = http.MethodPut, base+"/role", api.SetRole{Role: string(store.RoleClient)}
	case "revoke":
		method, path = http.MethodPost, base+"/revoke"
	default:
		c.errorPage(w, r, http.StatusNotFound, "No such page.")
		return
	}
	var n api.Notification
	var out any
	if action == "notify" {
		out = &n
	}
	if err := c.call(r.Context(), r, method, path, body, want, out); err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			c.errorPage(w, r, ae.code, fmt.Sprintf("Endpoint %s was not changed (%s): %s", id, action, ae.msg))
			return
		}
		c.fail(w, r, err)
		return
	}
	v := url.Values{"done": {action}}
	if n.ID != "" {
		v.Set("notification", n.ID)
	}
	http.Redirect(w, r, "/endpoints/"+url.PathEscape(id)+"?"+v.Encode(), http.StatusSeeOther)
}

// addressRange reads the endpoint list's address filter: an address, a
// range from-to, a CIDR or an IPv6 prefix, parsed as a policy entry's
// addresses are (internal/policy).
func addressRange(s string, q *store.EndpointQuery) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	rng, err := policy.ParseRange(s)
	if err != nil {
		return fmt.Errorf("address filter: %w", err)
	}
	q.AddrFrom, q.AddrTo = rng.From, rng.To
	return nil
}
