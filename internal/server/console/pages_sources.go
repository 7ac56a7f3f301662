package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cascade-update/cascade/internal/lint"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// The update source page (/sources, docs/console.md): the settings and the
// Customized Update Source List of the policy, edited as a draft that
// travels with every form post (the page's fields; the `policy` field
// holds it as YAML), validated by internal/policy, linted by the API's
// lint, and published through PUT /api/v1/policy after a confirmation
// that shows the difference from the version in force.

// maxSourcesBody bounds a post of the page: a draft of the largest
// policy, in two forms, and an imported file of the same size.
const maxSourcesBody = 4*policy.MaxSize + 1<<20

// sourcesView is what the page shows.
type sourcesView struct {
	InForce store.PolicyVersion
	// Base is the version the draft was started from (the editor), or the
	// version the difference is shown against (the confirmation).
	Base      int64
	Draft     *policy.Policy
	YAML      string
	Rows      []sourceRow
	Problems  []string // problems of the document, not of one entry
	Warnings  []string // lint warnings of no entry (an agent no entry names)
	Full      []string // every lint warning, as lint words it
	LintError string
	Agents    []agentOption
	Editor    entryEditor
	Dirty     bool
	// Fresh is a page of the version in force, as GET /sources shows it.
	Fresh    bool
	Valid    bool
	Error    string
	Notice   string
	Saved    int64
	Notified string
	// Page is the page of the list shown (1-based, sourcesPageSize
	// entries each); Pages are the list's pages when it has more than one.
	Page  int
	Pages []listPage
	// ReadOnly: the account may not change the policy (the pager links to
	// the version in force instead of carrying the draft).
	ReadOnly bool
	// Flagged counts the entries with problems, and with warnings, in
	// the whole list (the page shows only its own).
	WithProblems, WithWarnings int
	// ReviewWarnings are the warnings the review lists, and MoreWarnings
	// how many more the editor shows.
	ReviewWarnings []string
	MoreWarnings   int
	Diff           *Diff
	// Shown is the part of Diff's entries the review lists.
	Shown Shown
	// Newer is the version published since the draft was started, when
	// the difference is shown against it.
	Newer int64
}

// sourcesPageSize is the number of entries a page of the list shows:
// with the longest list (policy.MaxSources entries, each with warnings)
// a page and the draft it carries stay under 150 KB (issue 15).
const sourcesPageSize = 50

// maxReviewChanges is the number of entries added, removed, moved or
// changed that the review lists (the headings count them all): the
// review of a list of 1024 entries replaced whole stays under 150 KB.
const maxReviewChanges = 600

// maxReviewWarnings is the number of warnings the review lists; the
// editor shows every warning next to its entry.
const maxReviewWarnings = 20

// listPage is a page of the list: its number, its first and last entry,
// and whether an entry on it has a problem or a warning.
type listPage struct {
	N, From, To       int
	Problems, Warning bool
	Current           bool
}

// sourceRow is one entry of the draft's list.
type sourceRow struct {
	ID        int // the index of the row in the form posted next
	Pos       int // 1-based
	Entry     policy.Entry
	Kind      string // addressKind
	KindLabel string
	Host      string // the agent's hostname, when the source is an enrolled agent
	Selected  bool
	Problems  []string
	Warnings  []string
}

// kindLabels name the kinds of addresses in the list.
var kindLabels = map[string]string{"range": "range", "single": "single address", "cidr": "CIDR", "prefix": "IPv6 prefix"}

// agentOption is an enrolled update agent offered as a source.
type agentOption struct {
	ID, Label string
}

// entryEditor is the form that adds or edits an entry.
type entryEditor struct {
	Editing                        bool
	ID, Pos                        int // the row edited
	Kind, From, To, Single, CIDR   string
	Prefix, SourceKind, Agent, URL string
	Error                          string
}

// draftRow is a row of the posted list: its entry, and the row id it had
// in the page posted (-1: a new row).
type draftRow struct {
	policy.Entry
	id       int
	selected bool
}

// sourcesPage shows the policy in force (GET /sources).
func (c *Console) sourcesPage(w http.ResponseWriter, r *http.Request) {
	pv, err := c.st.CurrentPolicy(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d, err := readDraft([]byte(pv.Document))
	if err != nil {
		c.fail(w, r, fmt.Errorf("read policy version %d: %w", pv.Version, err))
		return
	}
	v := &sourcesView{InForce: pv, Base: pv.Version, Draft: d, Fresh: true, Editor: entryEditor{Kind: "range", SourceKind: "agent"}}
	q := r.URL.Query()
	v.Saved, _ = strconv.ParseInt(q.Get("saved"), 10, 64)
	v.Notified = q.Get("notified")
	v.Page, _ = strconv.Atoi(q.Get("page"))
	c.renderSources(w, r, http.StatusOK, v, rowsOf(d, nil), -1)
}

// sourcesPost applies one step of editing to the posted draft and shows
// the result (POST /sources).
func (c *Console) sourcesPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxSourcesBody)
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		c.errorPage(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return
	}
	pv, err := c.st.CurrentPolicy(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d, rows, err := postedDraft(r)
	if err != nil {
		c.errorPage(w, r, http.StatusBadRequest, "The draft could not be read: "+err.Error())
		return
	}
	base, _ := strconv.ParseInt(r.PostFormValue("base"), 10, 64)
	v := &sourcesView{InForce: pv, Base: base, Draft: d, Editor: postedEditor(r)}
	v.Page, _ = strconv.Atoi(r.PostFormValue("page"))
	editID := -2 // the row being edited, by its posted id
	if v.Editor.Editing {
		editID = v.Editor.ID
	}
	for _, s := range r.PostForm["sel"] {
		if n, err := strconv.Atoi(s); err == nil {
			if i := slices.IndexFunc(rows, func(x draftRow) bool { return x.id == n }); i >= 0 {
				rows[i].selected = true
			}
		}
	}
	action, arg, _ := strings.Cut(r.PostFormValue("action"), ":")
	id, _ := strconv.Atoi(arg)
	at := slices.IndexFunc(rows, func(x draftRow) bool { return arg != "" && x.id == id })
	code := http.StatusOK
	switch action {
	case "", "apply":
	case "page":
		v.Page = id
	case "cancel":
		v.Editor, editID = entryEditor{Kind: "range", SourceKind: "agent"}, -2
	case "up", "down":
		if at < 0 {
			v.Error = "That entry is no longer in the list."
			break
		}
		to := at - 1
		if action == "down" {
			to = at + 1
		}
		if to >= 0 && to < len(rows) {
			rows[at], rows[to] = rows[to], rows[at]
			v.Page = to/sourcesPageSize + 1
		}
	case "edit":
		if at < 0 {
			v.Error = "That entry is no longer in the list."
			break
		}
		v.Editor, editID = editorFor(rows[at].Entry), rows[at].id
		v.Page = at/sourcesPageSize + 1
	case "entry":
		e, msg := v.Editor.entry()
		if msg != "" {
			v.Editor.Error = msg
			code = http.StatusUnprocessableEntity
			break
		}
		if i := slices.IndexFunc(rows, func(x draftRow) bool { return x.id == editID }); editID >= 0 && i >= 0 {
			rows[i].Entry = e
			v.Notice = fmt.Sprintf("Entry %d changed in the draft.", i+1)
			v.Page = i/sourcesPageSize + 1
		} else {
			rows = append(rows, draftRow{Entry: e, id: -1})
			v.Notice = fmt.Sprintf("Entry %d added to the draft.", len(rows))
			v.Page = (len(rows)-1)/sourcesPageSize + 1
		}
		v.Editor, editID = entryEditor{Kind: "range", SourceKind: "agent"}, -2
	case "delete":
		n := len(rows)
		rows = slices.DeleteFunc(rows, func(x draftRow) bool { return x.selected })
		if n == len(rows) {
			v.Error = "Select the entries to delete (the check boxes of the list)."
			break
		}
		v.Notice = fmt.Sprintf("%s deleted from the draft.", entries(n-len(rows)))
	case "import":
		imported, list, msg := importDraft(r)
		if msg != "" {
			v.Error, code = msg, http.StatusUnprocessableEntity
			break
		}
		if imported != nil {
			d = imported
			v.Draft = d
		}
		rows = rowsOf(nil, list)
		v.Page = 1
		v.Notice = fmt.Sprintf("Imported %s into the draft: nothing is saved until you save it.", entries(len(list)))
		editID = -2
		v.Editor = entryEditor{Kind: "range", SourceKind: "agent"}
	case "save":
		c.reviewSources(w, r, v, rows, editID)
		return
	case "publish":
		c.publishSources(w, r, v, rows)
		return
	default:
		c.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("Unknown action %q.", action))
		return
	}
	c.renderSources(w, r, code, v, rows, editID)
}

// renderSources validates and lints the draft and shows the editor (or,
// with v.Diff, the confirmation). editID is the posted id of the row the
// entry form edits.
func (c *Console) renderSources(w http.ResponseWriter, r *http.Request, code int, v *sourcesView, rows []draftRow, editID int) {
	ctx := r.Context()
	v.Draft.CustomSources = make([]policy.Entry, len(rows))
	for i, x := range rows {
		v.Draft.CustomSources[i] = x.Entry
	}
	v.YAML = policyYAML(v.Draft)
	if inForce, err := readDraft([]byte(v.InForce.Document)); err == nil {
		v.Dirty = policyYAML(inForce) != v.YAML
	}
	agents, err := c.st.ListEndpoints(ctx, store.EndpointFilter{Role: store.RoleAgent})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	hosts := map[string]string{}
	for _, a := range agents {
		hosts[a.AgentID] = a.Hostname
		v.Agents = append(v.Agents, agentOption{ID: a.AgentID, Label: fmt.Sprintf("%s (%s, %s)", a.AgentID, a.Hostname, strings.Join(a.Addresses, ", "))})
	}
	slices.SortFunc(v.Agents, func(a, b agentOption) int { return strings.Compare(a.ID, b.ID) })
	if _, ok := hosts[v.Editor.Agent]; v.Editor.Agent != "" && !ok {
		v.Agents = append(v.Agents, agentOption{ID: v.Editor.Agent, Label: v.Editor.Agent + " (not an enrolled update agent)"})
	}
	p, problems := checkDraft(v.Draft)
	v.Valid = p != nil
	v.Problems = problems[0]
	v.Rows = make([]sourceRow, len(rows))
	for i, x := range rows {
		row := sourceRow{ID: i, Pos: i + 1, Entry: x.Entry, Kind: addressKind(x.Addresses), Problems: problems[i+1]}
		row.KindLabel = kindLabels[row.Kind]
		if id, ok := strings.CutPrefix(x.Source, "agent:"); ok {
			row.Host = hosts[id]
		}
		row.Selected = x.selected
		if editID >= 0 && x.id == editID {
			v.Editor.Editing, v.Editor.ID, v.Editor.Pos = true, i, i+1
		}
		v.Rows[i] = row
	}
	if v.Editor.Editing && v.Editor.Pos == 0 {
		v.Editor.Editing = false
		if editID >= 0 {
			v.Editor = entryEditor{Kind: "range", SourceKind: "agent", Error: "The entry edited is no longer in the list."}
		}
	}
	c.lintRows(r, v, p)
	v.ReadOnly = accountOf(r).Role != store.AccountAdmin
	v.paginate()
	c.render(w, r, code, "sources", map[string]any{"S": v})
}

// paginate keeps the rows of the page shown (every row's problems and
// warnings are known by then), lists the pages, and picks the warnings
// the review lists.
func (v *sourcesView) paginate() {
	for _, row := range v.Rows {
		if len(row.Problems) > 0 {
			v.WithProblems++
		}
		if len(row.Warnings) > 0 {
			v.WithWarnings++
		}
	}
	for _, w := range v.Full {
		if len(v.ReviewWarnings) < maxReviewWarnings {
			v.ReviewWarnings = append(v.ReviewWarnings, w)
		} else {
			v.MoreWarnings++
		}
	}
	n := (len(v.Rows) + sourcesPageSize - 1) / sourcesPageSize
	v.Page = max(1, min(v.Page, n))
	if n > 1 {
		for k := 1; k <= n; k++ {
			pg := listPage{N: k, From: (k-1)*sourcesPageSize + 1, To: min(k*sourcesPageSize, len(v.Rows)), Current: k == v.Page}
			for _, row := range v.Rows[pg.From-1 : pg.To] {
				pg.Problems = pg.Problems || len(row.Problems) > 0
				pg.Warning = pg.Warning || len(row.Warnings) > 0
			}
			v.Pages = append(v.Pages, pg)
		}
	}
	if n > 0 {
		v.Rows = v.Rows[(v.Page-1)*sourcesPageSize : min(v.Page*sourcesPageSize, len(v.Rows))]
	}
}

// lintRows puts the lint warnings of a valid draft next to the entries
// they concern (an invalid draft is not linted: the page says so).
func (c *Console) lintRows(r *http.Request, v *sourcesView, p *policy.Policy) {
	if p == nil {
		return
	}
	ws, err := c.lintDraft(r, v.YAML)
	if err != nil {
		v.LintError = err.Error()
	}
	for _, lw := range ws {
		if lw.Entry >= 1 && lw.Entry <= len(v.Rows) {
			row := &v.Rows[lw.Entry-1]
			row.Warnings = append(row.Warnings, nextToEntry(lw.Message, row.Pos, row.Entry))
			v.Full = append(v.Full, lw.Message)
		} else {
			v.Warnings = append(v.Warnings, lw.Message)
			v.Full = append(v.Full, lw.Message)
		}
	}
}

// nextToEntry is a lint warning as shown next to the entry it concerns:
// without the name of the entry it starts with (lint's "custom_sources
// entry N (ADDRESSES SOURCE)"), which the row shows.
func nextToEntry(msg string, n int, e policy.Entry) string {
	rest, ok := strings.CutPrefix(msg, fmt.Sprintf("custom_sources entry %d (%s %s)", n, e.Addresses, e.Source))
	switch {
	case !ok:
		return msg
	case strings.HasPrefix(rest, ": "):
		return rest[2:]
	}
	return "This entry" + rest
}

// lintDraft returns the warnings of a valid draft, from the API's lint
// (POST /api/v1/policy/lint: internal/lint against the registry).
func (c *Console) lintDraft(r *http.Request, doc string) ([]lint.Warning, error) {
	code, out, err := c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodPost, api.PathPolicyLint, api.PutPolicy{Document: doc})
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("the policy could not be linted: %s", apiMessage(out))
	}
	var res api.LintResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("read the lint result: %w", err)
	}
	return res.Warnings, nil
}

// reviewSources shows the difference between a valid draft and the
// version in force, with the button that publishes it; an invalid draft
// stays in the editor, with its problems, and nothing is saved.
func (c *Console) reviewSources(w http.ResponseWriter, r *http.Request, v *sourcesView, rows []draftRow, editID int) {
	draft := *v.Draft
	draft.CustomSources = nil
	for _, x := range rows {
		draft.CustomSources = append(draft.CustomSources, x.Entry)
	}
	p, problems := checkDraft(&draft)
	if p == nil {
		n, first := 0, 0
		for i, ps := range problems {
			n += len(ps)
			if i > 0 && (first == 0 || i < first) {
				first = i
			}
		}
		if first > 0 {
			v.Page = (first-1)/sourcesPageSize + 1 // the page of the first problem
		}
		v.Error = fmt.Sprintf("Nothing was saved: the draft has %d problem(s), shown next to what they concern. Correct them and save again.", n)
		c.renderSources(w, r, http.StatusUnprocessableEntity, v, rows, editID)
		return
	}
	inForce, err := policy.Parse([]byte(v.InForce.Document))
	if err != nil {
		c.fail(w, r, fmt.Errorf("read policy version %d: %w", v.InForce.Version, err))
		return
	}
	v.Diff = diffPolicies(inForce, p)
	if v.Base != 0 && v.Base != v.InForce.Version {
		v.Newer = v.InForce.Version
	}
	v.Base = v.InForce.Version
	v.Shown = v.Diff.Shown(maxReviewChanges)
	if v.Diff.Empty() {
		v.Diff = nil
		v.Notice = fmt.Sprintf("The draft is the same as version %d in force: there is nothing to save.", v.InForce.Version)
	}
	c.renderSources(w, r, http.StatusOK, v, rows, -2)
}

// publishSources publishes the draft through the admin API's own handler
// (PUT /api/v1/policy: validation, storage, signing, audit entry), if the
// version in force is still the one the difference was shown against.
func (c *Console) publishSources(w http.ResponseWriter, r *http.Request, v *sourcesView, rows []draftRow) {
	v.Draft.CustomSources = nil
	for _, x := range rows {
		v.Draft.CustomSources = append(v.Draft.CustomSources, x.Entry)
	}
	base := v.Base
	code, out, err := c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodPut, "/api/v1/policy",
		api.PutPolicy{Document: policyYAML(v.Draft), IfVersion: &base})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	switch code {
	case http.StatusOK:
		var res api.PolicyResult
		if err := json.Unmarshal(out, &res); err != nil {
			c.fail(w, r, fmt.Errorf("read the published policy: %w", err))
			return
		}
		http.Redirect(w, r, "/sources?"+url.Values{"saved": {fmt.Sprint(res.Policy.Version)}}.Encode(), http.StatusSeeOther)
		return
	case http.StatusConflict:
		v.Error = fmt.Sprintf("Nothing was saved: version %d was published while you reviewed version %d. Your draft is kept: save it again to see the difference from version %d.",
			v.InForce.Version, base, v.InForce.Version)
	default:
		v.Error = "Nothing was saved: " + apiMessage(out)
	}
	c.renderSources(w, r, code, v, rows, -2)
}

// sourcesNotify notifies every endpoint through the API's notify-all
// (POST /api/v1/notifications).
func (c *Console) sourcesNotify(w http.ResponseWriter, r *http.Request) {
	code, out, err := c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodPost, "/api/v1/notifications", nil)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if code != http.StatusCreated {
		c.errorPage(w, r, code, "No notification was sent: "+apiMessage(out))
		return
	}
	var n api.Notification
	if err := json.Unmarshal(out, &n); err != nil {
		c.fail(w, r, fmt.Errorf("read the notification: %w", err))
		return
	}
	http.Redirect(w, r, "/sources?"+url.Values{"notified": {n.ID}}.Encode(), http.StatusSeeOther)
}

// sourcesExport sends the policy in force (GET) or the posted draft
// (POST) as the policy YAML or the list as CSV.
func (c *Console) sourcesExport(w http.ResponseWriter, r *http.Request) {
	var d *policy.Policy
	name := "draft"
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxSourcesBody)
		if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			c.errorPage(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
			return
		}
		var rows []draftRow
		var err error
		if d, rows, err = postedDraft(r); err != nil {
			c.errorPage(w, r, http.StatusBadRequest, "The draft could not be read: "+err.Error())
			return
		}
		d.CustomSources = nil
		for _, x := range rows {
			d.CustomSources = append(d.CustomSources, x.Entry)
		}
	} else {
		pv, err := c.st.CurrentPolicy(r.Context())
		if err == nil {
			d, err = readDraft([]byte(pv.Document))
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		name = fmt.Sprintf("version-%d", pv.Version)
	}
	switch r.FormValue("format") {
	case "yaml":
		w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="policy-`+name+`.yaml"`)
		_, _ = io.WriteString(w, policyYAML(d))
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="sources-`+name+`.csv"`)
		_, _ = io.WriteString(w, listCSV(d.CustomSources))
	default:
		c.errorPage(w, r, http.StatusBadRequest, "Choose the format: yaml or csv.")
	}
}

// postedDraft reads the draft of a post: the complete document in the
// `policy` field (the draft is carried once, in the form every post of
// the page sends), with the editor's settings fields over it (form=editor)
// and, when the page's script reordered the rows shown, their new order
// (`order`: the row ids of one page in the order shown).
func postedDraft(r *http.Request) (*policy.Policy, []draftRow, error) {
	f := r.PostForm
	d, err := readDraft([]byte(f.Get("policy")))
	if err != nil {
		return nil, nil, err
	}
	rows := rowsOf(d, nil)
	if f.Get("form") != "editor" {
		return d, rows, nil
	}
	list := d.CustomSources
	d = newDraft()
	d.CustomSources = list
	d.Origin, d.Server = strings.TrimSpace(f.Get("origin")), strings.TrimSpace(f.Get("server"))
	d.DownloadFromOrigin = f.Get("download_from_origin") != ""
	d.Clients.Source = policy.Mode(f.Get("clients_source"))
	d.Agents.Source = policy.Mode(f.Get("agents_source"))
	d.Agents.OnlyFromServer = f.Get("only_from_server") != ""
	d.Agents.AlwaysFromStandardSource = f.Get("always_from_standard_source") != ""
	d.FallbackToServer.Components = f.Get("fallback_components") != ""
	d.FallbackToServer.DomainSettings = f.Get("fallback_domain_settings") != ""
	d.FallbackToServer.Programs = f.Get("fallback_programs") != ""
	if order := f["order"]; len(order) > 0 {
		if rows, err = reorder(rows, order); err != nil {
			return nil, nil, err
		}
	}
	return d, rows, nil
}

// reorder puts the rows whose ids order names (distinct) in that order,
// on the positions they held.
func reorder(rows []draftRow, order []string) ([]draftRow, error) {
	ids := make([]int, len(order))
	seen := map[int]bool{}
	for i, s := range order {
		id, err := strconv.Atoi(s)
		if err != nil || id < 0 || id >= len(rows) || seen[id] {
			return nil, fmt.Errorf("the order of the list names row %q", s)
		}
		ids[i], seen[id] = id, true
	}
	at := slices.Sorted(maps.Keys(seen)) // the positions they held (rows[i].id == i)
	out := slices.Clone(rows)
	for k, id := range ids {
		out[at[k]] = rows[id]
	}
	return out, nil
}

// rowsOf returns the rows of d's list, or of list when given.
func rowsOf(d *policy.Policy, list []policy.Entry) []draftRow {
	if d != nil {
		list = d.CustomSources
	}
	rows := make([]draftRow, len(list))
	for i, e := range list {
		rows[i] = draftRow{Entry: policy.Entry{Addresses: e.Addresses, Source: e.Source}, id: i}
	}
	return rows
}

// importDraft reads the imported file: a policy document (it replaces
// the whole draft) or a CSV list (it replaces the list). The message says
// why nothing was imported.
func importDraft(r *http.Request) (*policy.Policy, []policy.Entry, string) {
	file, _, err := r.FormFile("import_file")
	if err != nil {
		return nil, nil, "Choose the file to import."
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, policy.MaxSize+1))
	if err != nil {
		return nil, nil, "The file could not be read: " + err.Error()
	}
	switch r.PostFormValue("import_format") {
	case "csv":
		list, err := readCSV(data)
		if err != nil {
			return nil, nil, "Nothing was imported: " + err.Error()
		}
		return nil, list, ""
	case "yaml":
		d, err := readDraft(data)
		if err != nil {
			return nil, nil, "Nothing was imported: " + err.Error()
		}
		return d, d.CustomSources, ""
	}
	return nil, nil, "Choose the format of the file: policy YAML or CSV."
}

// postedEditor reads the entry form.
func postedEditor(r *http.Request) entryEditor {
	f := r.PostForm
	e := entryEditor{Kind: f.Get("kind"), From: f.Get("from"), To: f.Get("to"), Single: f.Get("single"), CIDR: f.Get("cidr"),
		Prefix: f.Get("prefix"), SourceKind: f.Get("source_kind"), Agent: f.Get("agent"), URL: f.Get("url")}
	if id, err := strconv.Atoi(f.Get("edit")); err == nil && id >= 0 {
		e.Editing, e.ID = true, id
	}
	if e.Kind == "" {
		e.Kind = "range"
	}
	if e.SourceKind == "" {
		e.SourceKind = "agent"
	}
	return e
}

// editorFor fills the entry form with an entry.
func editorFor(e policy.Entry) entryEditor {
	ed := entryEditor{Kind: addressKind(e.Addresses), SourceKind: "url"}
	a := strings.TrimSpace(e.Addresses)
	switch ed.Kind {
	case "range":
		ed.From, ed.To, _ = strings.Cut(a, "-")
	case "single":
		ed.Single = a
	case "cidr":
		ed.CIDR = a
	case "prefix":
		ed.Prefix = a
	}
	if id, ok := strings.CutPrefix(e.Source, "agent:"); ok {
		ed.SourceKind, ed.Agent = "agent", id
	} else {
		ed.URL = e.Source
	}
	return ed
}

// entry returns the entry the form describes, or what is missing. The
// entry itself is validated with the draft, by internal/policy.
func (e entryEditor) entry() (policy.Entry, string) {
	var out policy.Entry
	t := strings.TrimSpace
	switch e.Kind {
	case "range":
		if t(e.From) == "" || t(e.To) == "" {
			return out, "Type the first and the last address of the range."
		}
		out.Addresses = t(e.From) + "-" + t(e.To)
	case "single":
		out.Addresses = t(e.Single)
	case "cidr":
		out.Addresses = t(e.CIDR)
	case "prefix":
		out.Addresses = t(e.Prefix)
	default:
		return out, fmt.Sprintf("Unknown kind of addresses %q.", e.Kind)
	}
	if out.Addresses == "" {
		return out, "Type the addresses of the entry."
	}
	switch e.SourceKind {
	case "agent":
		if t(e.Agent) == "" {
			return out, "Choose the update agent (no update agent is enrolled: type the source as a URL, or enroll one)."
		}
		out.Source = "agent:" + t(e.Agent)
	case "url":
		if t(e.URL) == "" {
			return out, "Type the URL of the source."
		}
		out.Source = t(e.URL)
	default:
		return out, fmt.Sprintf("Unknown kind of source %q.", e.SourceKind)
	}
	return out, ""
}

// entries says "1 entry" or "n entries".
func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}
