package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// Agents is the agents page's content.
type Agents struct {
	// Report is the agent analytical report, as GET
	// /api/v1/agents/report answers it, with the first members of each
	// group by hostname (the endpoint list has them all).
	Report *api.AgentReport
	// Health is each enrolled update agent's own state, by agent id.
	Health map[string]AgentHealth
}

// AgentHealth is an update agent's own state: contact, versions and its
// own last run (classified as the report classifies every endpoint).
type AgentHealth struct {
	EndpointID string
	Hostname   string
	Addresses  []string
	LastSeen   time.Time
	Connected  bool
	Installed  store.Installed
	State      string
	Sources    map[string]string
}

// Content is the content page's content.
type Content struct {
	Components []ContentComponent
	LastSync   *api.SyncResult
	Syncing    *api.SyncProgress
	// Programs are the programs the mirrored copy holds, by name.
	Programs []ContentProgram
	// Approvals are the program versions approved, per domain.
	Approvals []api.Approval
	// MirrorError says why the mirrored copy could not be read (then no
	// component lists its mirrored versions).
	MirrorError string
}

// ContentComponent is one component and the versions the mirrored copy
// holds, newest first.
type ContentComponent struct {
	api.Component
	Mirrored []string
}

// ContentProgram is one program and the versions the mirrored copy
// holds, newest first.
type ContentProgram struct {
	Name     string
	Mirrored []string
}

// Others are the mirrored versions other than the deployed one: the
// versions a deployment may choose.
func (c ContentComponent) Others() []string {
	return slices.DeleteFunc(slices.Clone(c.Mirrored), func(v string) bool { return v == c.Deployed })
}

// contentBackend is what the agents and content pages ask the server.
type contentBackend interface {
	Agents(ctx context.Context) (*Agents, error)
	Content(ctx context.Context) (*Content, error)
}

func (c *Console) agents(w http.ResponseWriter, r *http.Request) {
	a, err := c.be.Agents(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	// Clients by hostname (the report lists them in the registry's order).
	byHost := func(a, b api.AgentMember) int { return strings.Compare(a.Hostname, b.Hostname) }
	slices.SortStableFunc(a.Report.Unassigned.Members, byHost)
	for i := range a.Report.Agents {
		slices.SortStableFunc(a.Report.Agents[i].Members, byHost)
	}
	// A page of agents: each shows its health and first clients.
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pages := max(1, (len(a.Report.Agents)+agentsPerPage-1)/agentsPerPage)
	page = min(max(page, 1), pages)
	report := *a.Report
	report.Agents = report.Agents[(page-1)*agentsPerPage : min(len(report.Agents), page*agentsPerPage)]
	a.Report = &report
	data := map[string]any{"A": a, "Now": c.now(), "States": endpointStates[1:5], "Page": page, "Pages": pages}
	if page > 1 {
		data["Prev"] = fmt.Sprintf("/agents?page=%d", page-1)
	}
	if page < pages {
		data["Next"] = fmt.Sprintf("/agents?page=%d", page+1)
	}
	c.render(w, r, http.StatusOK, "agents", data)
}

// agentsPerPage is how many update agents a page of /agents shows.
const agentsPerPage = 10

func (c *Console) content(w http.ResponseWriter, r *http.Request) {
	ct, err := c.be.Content(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := map[string]any{"C": ct}
	// The sync log: the newest syncs (?syncs=N, default syncLogShown).
	n, _ := strconv.Atoi(r.URL.Query().Get("syncs"))
	if n < 1 {
		n = syncLogShown
	}
	n = min(n, syncLogMax)
	if syncs, err := c.st.ListSyncs(r.Context(), n); err != nil {
		data["SyncLogError"] = err.Error()
	} else {
		data["Syncs"] = syncs
		if len(syncs) == n && n < syncLogMax {
			data["MoreSyncs"] = fmt.Sprintf("/content?syncs=%d", min(max(100, 5*n), syncLogMax))
		}
	}
	if name := r.URL.Query().Get("changed"); name != "" {
		for _, cc := range ct.Components {
			if cc.Name == name {
				data["Changed"] = cc
			}
		}
	}
	if ds, err := c.st.ListDomains(r.Context()); err == nil {
		data["Domains"] = ds
	}
	c.render(w, r, http.StatusOK, "content", data)
}

// syncLogShown is how many syncs of the sync log the content page shows
// by default; syncLogMax caps what ?syncs=N asks for.
const (
	syncLogShown = 20
	syncLogMax   = 1000
)

// contentActions are the changes the content page makes, each through
// POST /api/v1/content/components/{name}/{action}.
var contentActions = []string{"hold", "release", "deploy"}

// confirmContent shows what a change will do and asks to confirm it; the
// confirmation posts to the same path.
func (c *Console) confirmContent(w http.ResponseWriter, r *http.Request) {
	name, action, version := r.PathValue("name"), r.PathValue("action"), r.URL.Query().Get("version")
	if !slices.Contains(contentActions, action) {
		c.errorPage(w, r, http.StatusNotFound, "No such page.")
		return
	}
	ct, err := c.be.Content(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(ct.Components, func(cc ContentComponent) bool { return cc.Name == name })
	if i < 0 {
		c.errorPage(w, r, http.StatusNotFound, "No component "+name+" has been mirrored.")
		return
	}
	if action == "deploy" && version == "" {
		c.errorPage(w, r, http.StatusBadRequest, "Choose the version to deploy.")
		return
	}
	c.render(w, r, http.StatusOK, "confirm", map[string]any{"Comp": ct.Components[i], "Action": action, "Version": version})
}

// changeContent performs a confirmed change through the admin API's own
// handler (its rules and its audit entry) and goes back to the content
// page.
func (c *Console) changeContent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	name, action := r.PathValue("name"), r.PathValue("action")
	if !slices.Contains(contentActions, action) {
		c.errorPage(w, r, http.StatusNotFound, "No such page.")
		return
	}
	var body any
	if action == "deploy" {
		body = api.Deploy{Version: r.PostFormValue("version")}
	}
	code, out, err := c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodPost,
		"/api/v1/content/components/"+url.PathEscape(name)+"/"+action, body)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if code != http.StatusOK {
		c.errorPage(w, r, code, "Component "+name+" was not changed ("+action+"): "+apiMessage(out))
		return
	}
	http.Redirect(w, r, "/content?"+url.Values{"changed": {name}}.Encode(), http.StatusSeeOther)
}

// confirmProgram shows what a program approval or withdrawal will do and
// asks to confirm it; the confirmation posts to the same path.
func (c *Console) confirmProgram(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	program, action, domain, version := r.PathValue("program"), r.PathValue("action"), q.Get("domain"), q.Get("version")
	if action != "approve" && action != "withdraw" {
		c.errorPage(w, r, http.StatusNotFound, "No such page.")
		return
	}
	if domain == "" || (action == "approve" && version == "") {
		c.errorPage(w, r, http.StatusBadRequest, "Choose the domain and the version.")
		return
	}
	c.render(w, r, http.StatusOK, "confirm", map[string]any{"Program": program, "Action": action, "Domain": domain, "Version": version})
}

// changeProgram approves or withdraws a program version for a domain
// through the admin API's own handler (PUT or DELETE
// /api/v1/domains/{domain}/programs/{program}).
func (c *Console) changeProgram(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	program, action, domain := r.PathValue("program"), r.PathValue("action"), r.PostFormValue("domain")
	path := "/api/v1/domains/" + url.PathEscape(domain) + "/programs/" + url.PathEscape(program)
	var code int
	var out []byte
	var err error
	switch action {
	case "approve":
		code, out, err = c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodPut, path, api.Deploy{Version: r.PostFormValue("version")})
	case "withdraw":
		code, out, err = c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodDelete, path, nil)
	default:
		c.errorPage(w, r, http.StatusNotFound, "No such page.")
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if code != http.StatusOK && code != http.StatusNoContent {
		c.errorPage(w, r, code, "Program "+program+" was not changed ("+action+" in domain "+domain+"): "+apiMessage(out))
		return
	}
	http.Redirect(w, r, "/content#approvals", http.StatusSeeOther)
}
