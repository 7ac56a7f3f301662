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

// Backend is what the console asks the server for: the same functions
// the admin API answers with.
type Backend interface {
	// Dashboard summarises the server's state; endpoints not seen since
	// notSeenSince count as not seen.
	Dashboard(ctx context.Context, notSeenSince time.Time) (*Dashboard, error)
	// EndpointStates classifies every endpoint that is not revoked as the
	// agent report does (api.StateUpToDate, StateBehind, StateFailing,
	// StateNoReport).
	EndpointStates(ctx context.Context) (map[string]string, error)
	// Do performs an admin API request (method, path, JSON body) as actor,
	// exactly as the API does it (rules and audit log included), and
	// returns the status and the answer's body.
	Do(ctx context.Context, actor, method, path string, body any) (int, []byte, error)
	// AgentMembers returns the ids of the endpoints whose effective list
	// starts with the update agent agentID, as the agent report counts
	// them.
	AgentMembers(ctx context.Context, agentID string) ([]string, error)
	// EndpointPage pages the endpoints by the same classification as
	// EndpointStates and AgentMembers, in the order store.QueryEndpoints
	// gives: the ids of q's page and how many match q. An unknown sort is
	// store.ErrInvalid.
	EndpointPage(ctx context.Context, q ViewQuery) ([]string, int, error)
	// AuditFilter reads an audit filter from r's query, as GET
	// /api/v1/audit does.
	AuditFilter(r *http.Request) (store.AuditFilter, error)
	contentBackend
}

// ViewQuery selects, orders and pages endpoints by their classification
// (Backend.EndpointPage). Zero fields do not filter.
type ViewQuery struct {
	State string // api.StateUpToDate, StateBehind, StateFailing or StateNoReport
	Agent string // the update agent the endpoints' lists start with
	Role  store.Role
	// Sort, Desc, Offset and Limit are as in store.EndpointQuery.
	Sort          string
	Desc          bool
	Offset, Limit int
}

// Dashboard is the dashboard's content.
type Dashboard struct {
	Total, UpToDate, Behind, Failing, NoReport, NotSeen int
	PolicyVersion                                       int64
	Components                                          []api.Component
	Agents                                              []api.AgentAnalysis
	Unassigned                                          int // endpoints whose list starts with no update agent
	LastSync                                            *api.SyncResult
	Warnings                                            []string
	// Generated is when the endpoint figures were computed (with a large
	// registry they are reused for a while).
	Generated time.Time
	// Programs are the programs the mirrored copy holds and Approvals the
	// program versions approved per domain, as the content page shows
	// them (Content.Programs, Content.Approvals); ProgramsError says why
	// the mirrored programs could not be read.
	Programs      []ContentProgram
	Approvals     []api.Approval
	ProgramsError string
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request) {
	since := c.now().Add(-c.notSeen)
	d, err := c.be.Dashboard(r.Context(), since)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := map[string]any{"D": d, "NotSeenDays": int(c.notSeen.Hours() / 24)}
	data["Programs"], data["MorePrograms"] = dashboardPrograms(d.Programs, d.Approvals, dashboardRows)
	domains, more, err := c.dashboardDomains(r.Context(), dashboardRows)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data["Domains"], data["MoreDomains"] = domains, more
	c.render(w, r, http.StatusOK, "dashboard", data)
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.log.Error("console: page failed", "path", r.URL.Path, "err", err)
	c.errorPage(w, r, http.StatusInternalServerError, "The page could not be read: "+err.Error())
}

// pageSize is the endpoint list's page length.
const pageSize = 50

// endpointStates are the state filter's values.
var endpointStates = []string{"", api.StateUpToDate, api.StateBehind, api.StateFailing, api.StateNoReport, "not_seen"}

func (c *Console) endpoints(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	eq := store.EndpointQuery{Role: store.Role(q.Get("role")), Text: q.Get("q"), Sort: q.Get("sort"), Desc: q.Get("desc") == "1", Limit: pageSize}
	state := q.Get("state")
	if !slices.Contains(endpointStates, state) {
		c.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("Unknown state %q.", state))
		return
	}
	if eq.Role != "" && eq.Role != store.RoleAgent && eq.Role != store.RoleClient {
		c.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("Unknown role %q.", eq.Role))
		return
	}
	if err := addressRange(q.Get("addr"), &eq); err != nil {
		c.errorPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if !slices.Contains([]string{"", "hostname", "last_seen", "role", "id"}, eq.Sort) {
		c.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("Unknown sort %q.", eq.Sort))
		return
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	eq.Offset = (page - 1) * pageSize
	agent := q.Get("agent")
	classified := state != "" && state != "not_seen"
	var rows []store.EndpointRow
	var total int
	var err error
	if (classified || agent != "") && strings.TrimSpace(eq.Text) == "" && q.Get("addr") == "" {
		// Filtered by the classification alone: it orders and counts
		// (tens of thousands of ids need not go to SQL), SQL reads the
		// page's rows.
		rows, total, err = c.classifiedPage(r.Context(), ViewQuery{State: state, Agent: agent, Role: eq.Role,
			Sort: eq.Sort, Desc: eq.Desc, Offset: eq.Offset, Limit: eq.Limit})
	} else {
		rows, total, err = c.queryPage(r.Context(), eq, state, agent)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	agents, err := c.st.AgentDirectory(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.renderEndpoints(w, r, q, eq, state, agent, page, rows, total, agents)
}

// classifiedPage is a page of the endpoint list filtered by state or
// agent (and role) only.
func (c *Console) classifiedPage(ctx context.Context, vq ViewQuery) ([]store.EndpointRow, int, error) {
	ids, total, err := c.be.EndpointPage(ctx, vq)
	if err != nil {
		return nil, 0, err
	}
	// The rows by id, which the databases read by their primary key
	// (ordered by a column, they may walk its index through the whole
	// registry), then put in the page's order. An endpoint revoked since
	// the classification is left out (the store lists no revoked one).
	rows, _, err := c.st.QueryEndpoints(ctx, store.EndpointQuery{IDs: ids, Sort: "id"})
	if err != nil {
		return nil, 0, err
	}
	at := make(map[string]int, len(ids))
	for i, id := range ids {
		at[id] = i
	}
	slices.SortFunc(rows, func(a, b store.EndpointRow) int { return at[a.ID] - at[b.ID] })
	return rows, total, nil
}

// queryPage is a page of the endpoint list from SQL, the ids of a state
// or agent filter from the classification.
func (c *Console) queryPage(ctx context.Context, eq store.EndpointQuery, state, agent string) ([]store.EndpointRow, int, error) {
	switch state {
	case "not_seen":
		eq.SeenBefore = c.now().Add(-c.notSeen)
	case api.StateUpToDate, api.StateBehind, api.StateFailing, api.StateNoReport:
		// Up to date and behind compare versions as the agent report
		// does (internal/version), which SQL cannot: the ids come from
		// the same classification as the dashboard's counts (so that
		// the list holds as many as the dashboard says), the page from
		// SQL.
		states, err := c.be.EndpointStates(ctx)
		if err != nil {
			return nil, 0, err
		}
		eq.IDs = []string{}
		for id, s := range states {
			if s == state {
				eq.IDs = append(eq.IDs, id)
			}
		}
	}
	if agent != "" {
		ids, err := c.be.AgentMembers(ctx, agent)
		if err != nil {
			return nil, 0, err
		}
		if eq.IDs != nil {
			ids = slices.DeleteFunc(ids, func(id string) bool { return !slices.Contains(eq.IDs, id) })
		}
		eq.IDs = ids
	}
	return c.st.QueryEndpoints(ctx, eq)
}

// renderEndpoints renders a page of the endpoint list.
func (c *Console) renderEndpoints(w http.ResponseWriter, r *http.Request, q url.Values, eq store.EndpointQuery, state, agent string,
	page int, rows []store.EndpointRow, total int, agents []store.AgentEntry) {
	type row struct {
		store.EndpointRow
		Sources []string
		Seen    bool
	}
	out := make([]row, len(rows))
	for i, e := range rows {
		out[i].EndpointRow = e
		out[i].Seen = !e.LastSeen.Before(c.now().Add(-c.notSeen))
		for _, cr := range e.LastReport.Categories {
			src := cr.Source
			if src == "" {
				src = "none (" + cr.Result + ")"
			}
			out[i].Sources = append(out[i].Sources, string(cr.Category)+": "+src)
		}
	}
	link := func(p int, sort string, desc bool) string {
		v := url.Values{}
		for _, k := range []string{"state", "role", "agent", "q", "addr"} {
			if q.Get(k) != "" {
				v.Set(k, q.Get(k))
			}
		}
		if sort != "" {
			v.Set("sort", sort)
		}
		if desc {
			v.Set("desc", "1")
		}
		if p > 1 {
			v.Set("page", strconv.Itoa(p))
		}
		return "/endpoints?" + v.Encode()
	}
	pages := (total + pageSize - 1) / pageSize
	data := map[string]any{"Rows": out, "Total": total, "Page": page, "Pages": max(pages, 1),
		"State": state, "Role": string(eq.Role), "Agent": agent, "Agents": agents, "Q": eq.Text, "Addr": q.Get("addr"), "Sort": eq.Sort, "Desc": eq.Desc,
		"States": endpointStates[1:], "NotSeenDays": int(c.notSeen.Hours() / 24)}
	if page > 1 {
		data["Prev"] = link(page-1, eq.Sort, eq.Desc)
	}
	if page < pages {
		data["Next"] = link(page+1, eq.Sort, eq.Desc)
	}
	sortLinks := map[string]string{}
	for _, s := range []string{"hostname", "last_seen", "role", "id"} {
		cur := eq.Sort
		if cur == "" {
			cur = "hostname"
		}
		sortLinks[s] = link(1, s, s == cur && !eq.Desc)
	}
	data["SortLinks"] = sortLinks
	c.render(w, r, http.StatusOK, "endpoints", data)
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request) {
	f, err := c.be.AuditFilter(r)
	if err != nil {
		c.errorPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	es, err := c.st.ListAudit(r.Context(), f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	data := map[string]any{"Entries": es, "Actor": q.Get("actor"), "Kind": q.Get("kind"), "Since": q.Get("since"), "Until": q.Get("until")}
	if len(es) == f.Limit {
		v := url.Values{}
		for _, k := range []string{"actor", "kind", "since", "until", "limit"} {
			if q.Get(k) != "" {
				v.Set(k, q.Get(k))
			}
		}
		v.Set("before", strconv.FormatInt(es[len(es)-1].Seq, 10))
		data["Next"] = "/audit?" + v.Encode()
	}
	c.render(w, r, http.StatusOK, "audit", data)
}

// auditEntry shows one entry of the audit log with the states before and
// after (the log's page links to it: inlining every entry's documents
// would make that page as large as the policies it records).
func (c *Console) auditEntry(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq <= 0 {
		c.errorPage(w, r, http.StatusNotFound, "No such audit entry.")
		return
	}
	es, err := c.st.ListAudit(r.Context(), store.AuditFilter{Before: seq + 1, Limit: 1})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(es) == 0 || es[0].Seq != seq {
		c.errorPage(w, r, http.StatusNotFound, "No such audit entry.")
		return
	}
	c.render(w, r, http.StatusOK, "audit", map[string]any{"Entries": es, "Entry": true})
}

func (c *Console) enrollment(w http.ResponseWriter, r *http.Request) {
	ts, err := c.st.ListEnrollmentTokens(r.Context(), "")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ds, err := c.st.ListDomains(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	slices.Reverse(ts) // newest first
	c.render(w, r, http.StatusOK, "enrollment", map[string]any{"Tokens": ts, "Domains": ds, "Now": c.now()})
}

// createToken makes an enrollment token through the admin API's function
// and shows its secret once.
func (c *Console) createToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	req := api.TokenRequest{Domain: r.PostFormValue("domain"), Agents: r.PostFormValue("agents") == "on",
		ExpiresIn: strings.TrimSpace(r.PostFormValue("expires_in"))}
	if u := strings.TrimSpace(r.PostFormValue("uses")); u != "" {
		n, err := strconv.Atoi(u)
		if err != nil {
			c.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("Uses %q is not a number.", u))
			return
		}
		req.Uses = &n
	}
	code, body, err := c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodPost, "/api/v1/tokens", req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if code != http.StatusCreated {
		c.errorPage(w, r, code, "The token was not created: "+apiMessage(body))
		return
	}
	tok, err := decodeToken(body)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "enrollment", c.enrollmentData(r, map[string]any{"Created": tok}))
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request) {
	code, body, err := c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(r.PathValue("id")), nil)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if code != http.StatusNoContent {
		c.errorPage(w, r, code, "The token was not revoked: "+apiMessage(body))
		return
	}
	http.Redirect(w, r, "/enrollment", http.StatusSeeOther)
}

func (c *Console) enrollmentData(r *http.Request, data map[string]any) map[string]any {
	ts, err := c.st.ListEnrollmentTokens(r.Context(), "")
	if err == nil {
		slices.Reverse(ts)
		data["Tokens"] = ts
	}
	if ds, err := c.st.ListDomains(r.Context()); err == nil {
		data["Domains"] = ds
	}
	data["Now"] = c.now()
	return data
}
