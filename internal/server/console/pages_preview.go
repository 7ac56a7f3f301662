package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/whatif"
)

// The preview and the what-if of an edited update-source policy
// (docs/console.md, Preview and what-if). Both pages take the draft as
// the form field "policy" (the complete policy document in YAML, as
// `cascade policy check` reads it), which the update source page posts to
// them; GET starts from the policy in force. They compute through the
// admin API's own handlers (POST /api/v1/policy/preview and
// /api/v1/policy/whatif, internal/whatif over the decision engine) and
// change nothing: viewers may use them and no audit entry is written.

// maxDraftForm bounds a preview or what-if form: the policy document (at
// most policy.MaxSize) and the other fields.
const maxDraftForm = policy.MaxSize + 64<<10

// previewTemplates are the pages of this file.
var previewTemplates = []string{"preview", "whatif"}

func init() { funcs["bytes"] = byteCount }

// draft is the policy field of a preview or what-if form.
type draft struct {
	Doc string
	// InForce is the version the draft was read from (GET), 0 for a
	// posted draft.
	InForce int64
	// Problems say why the draft is not a valid policy (nil if it is).
	Problems []string
	parsed   *policy.Policy
}

// readDraft reads the draft: the posted policy field, else the policy in
// force. A posted draft is validated by policy.Parse, as `cascade policy
// check` does.
func (c *Console) readDraft(w http.ResponseWriter, r *http.Request) (*draft, bool) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxDraftForm)
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				c.errorPage(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("The form is too large: a policy has at most %d bytes.", policy.MaxSize))
			} else {
				c.errorPage(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
			}
			return nil, false
		}
		if _, ok := r.PostForm["policy"]; ok {
			d := &draft{Doc: r.PostFormValue("policy")}
			d.parsed, d.Problems = parseDraft(d.Doc)
			return d, true
		}
	}
	code, body, err := c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodGet, "/api/v1/policy", nil)
	if err != nil {
		c.fail(w, r, err)
		return nil, false
	}
	if code == http.StatusNotFound {
		return &draft{Problems: []string{"No policy is in force yet: paste a policy document."}}, true
	}
	var pv api.Policy
	if code != http.StatusOK {
		c.errorPage(w, r, code, "The policy in force could not be read: "+apiMessage(body))
		return nil, false
	}
	if err := json.Unmarshal(body, &pv); err != nil {
		c.fail(w, r, fmt.Errorf("read the policy in force: %w", err))
		return nil, false
	}
	d := &draft{Doc: pv.Document, InForce: pv.Version}
	d.parsed, d.Problems = parseDraft(d.Doc)
	return d, true
}

// parseDraft validates doc exactly as `cascade policy check` does and
// returns every problem, one line each.
func parseDraft(doc string) (*policy.Policy, []string) {
	if strings.TrimSpace(doc) == "" {
		return nil, []string{"The policy is empty: give the complete policy document (YAML)."}
	}
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		var ve *policy.ValidationError
		if errors.As(err, &ve) && len(ve.Problems) > 0 {
			return nil, ve.Problems
		}
		return nil, []string{err.Error()}
	}
	return p, nil
}

// triggers are the trigger select's values.
var triggers = []plan.Trigger{plan.Scheduled, plan.Manual, plan.NotifyComponents}

// previewForm is what the preview form asks for: enrolled endpoints (one
// target each), the addresses of one endpoint with a role, as `cascade
// server policy preview --endpoint ... --address ...` takes them, and a
// set of addresses (Ranges: single addresses, ranges from-to, CIDRs, IPv6
// prefixes) of endpoints with that role, from Start on.
type previewForm struct {
	Endpoints, Addresses, Ranges, Start, Role, AgentID, Trigger string
}

// Bounds of a preview of ranges on the page: the groups asked of the API
// and the plan rows shown (each group shows one row per source of each
// category under either policy, about 400 bytes each), which with the
// draft of a 1024-entry list (about 75 KB) keep the page under 150 KB;
// what is left is a click away (Next).
const (
	pageGroups = 25
	pageRows   = 110
)

// splitList splits a field on newlines, commas and blanks.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' })
}

// targets returns the API's targets of f; endpoints come first, then the
// address set.
func (f previewForm) targets() ([]api.PreviewTarget, error) {
	var out []api.PreviewTarget
	for _, e := range splitList(f.Endpoints) {
		out = append(out, api.PreviewTarget{Endpoint: e})
	}
	addrs := splitList(f.Addresses)
	for _, a := range addrs {
		if strings.ContainsAny(a, "/-") {
			return nil, fmt.Errorf("addresses: %q is a range: these are the addresses of one endpoint; give a range under sets of addresses", a)
		}
	}
	if rs := splitRanges(f.Ranges); len(rs) > 0 {
		t := api.PreviewTarget{Ranges: rs, Start: strings.TrimSpace(f.Start), Limit: pageGroups, AgentID: f.AgentID}
		if f.Role != "client" {
			t.Role = f.Role
		}
		out = append(out, t)
	}
	if len(addrs) > 0 {
		t := api.PreviewTarget{Addresses: addrs, AgentID: f.AgentID}
		if f.Role != "client" {
			t.Role = f.Role
		}
		out = append(out, t)
	} else if f.AgentID != "" && strings.TrimSpace(f.Ranges) == "" {
		return nil, errors.New("agent id: it goes with addresses of role update agent")
	}
	if len(out) == 0 {
		return nil, errors.New("give an enrolled endpoint (id or hostname), an address or a set of addresses to preview")
	}
	return out, nil
}

// splitRanges splits the sets-of-addresses field on newlines and commas;
// blanks around a "-" are dropped ("10.0.0.1 - 10.0.0.9" is one range).
func splitRanges(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		f = strings.Join(strings.Fields(f), " ")
		f = strings.ReplaceAll(strings.ReplaceAll(f, " -", "-"), "- ", "-")
		out = append(out, strings.Fields(f)...)
	}
	return out
}

var targetIndex = regexp.MustCompile(`^targets\[(\d+)\]: `)

// targetMessage names the target of an API message "targets[i]: ..." as
// the form gave it.
func targetMessage(msg string, ts []api.PreviewTarget) string {
	m := targetIndex.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	i, _ := strconv.Atoi(m[1])
	rest := msg[len(m[0]):]
	if i < len(ts) && ts[i].Endpoint != "" {
		return fmt.Sprintf("Endpoint %q: %s", ts[i].Endpoint, rest)
	}
	if i < len(ts) && len(ts[i].Ranges) > 0 {
		return "Sets of addresses: " + strings.TrimPrefix(rest, "ranges: ")
	}
	return "Addresses: " + rest
}

// previewRow is one position of one category in both plans.
type previewRow struct {
	Category          string
	Pos               int
	Current, Edited   string
	CurrentWhy, EdWhy string
	Differs           bool
	Note              string // a category without sources in either plan
	First             bool   // the category's first row
}

// previewView is one target's comparison as the page shows it.
type previewView struct {
	Name, Role            string
	EndpointID            string
	CurrentRule, EditRule string
	Rows                  []previewRow
	Changed               []string // per category that differs, where
	CurrentNotes, EdNotes []string
}

func viewPreview(p api.Preview) previewView {
	t := p.Target
	v := previewView{Role: t.Role, EndpointID: t.EndpointID, CurrentRule: p.Current.Rule, EditRule: p.Edited.Rule,
		CurrentNotes: p.Current.Notes, EdNotes: p.Edited.Notes}
	v.Name = strings.Join(t.Addresses, ", ")
	if t.EndpointID != "" {
		v.Name = fmt.Sprintf("%s (%s; %s)", t.Hostname, t.EndpointID, v.Name)
	}
	if t.AgentID != "" {
		v.Role += " " + t.AgentID
	}
	for _, ch := range p.Changed {
		pos := make([]string, len(ch.Positions))
		for i, n := range ch.Positions {
			pos[i] = strconv.Itoa(n)
		}
		s := string(ch.Category)
		if len(pos) > 0 {
			s += ": position " + strings.Join(pos, ", ")
		} else {
			s += ": updated under one policy only"
		}
		v.Changed = append(v.Changed, s)
	}
	for _, c := range category.All {
		cur, okC := p.Current.Categories[c]
		ed, okE := p.Edited.Categories[c]
		switch {
		case !okC && !okE:
			continue
		case len(cur) == 0 && len(ed) == 0:
			note := "no source under either policy: the category quits"
			if !okC || !okE {
				note = "not updated by this trigger under one policy, no source under the other"
			}
			v.Rows = append(v.Rows, previewRow{Category: string(c), Note: note, Differs: okC != okE, First: true})
			continue
		}
		for j := range max(len(cur), len(ed)) {
			row := previewRow{Category: string(c), Pos: j + 1, Current: "—", Edited: "—", First: j == 0}
			if j < len(cur) {
				row.Current, row.CurrentWhy = cur[j].Source, cur[j].Why
			}
			if j < len(ed) {
				row.Edited, row.EdWhy = ed[j].Source, ed[j].Why
			}
			row.Differs = row.Current != row.Edited
			v.Rows = append(v.Rows, row)
		}
	}
	return v
}

// rangeView is a preview of a set of addresses as the page shows it.
type rangeView struct {
	Name, Role string
	Groups     []groupView
	// Changed counts the groups shown whose plans differ.
	Changed int
	// Next is the first address not shown ("" at the end of the set).
	Next string
}

// groupView is one group of a set of addresses.
type groupView struct {
	Addresses string
	// Filter is the group for the endpoint list's address filter.
	Filter    string
	Endpoints int
	previewView
}

// viewRanges shows the groups of p up to pageRows plan rows (at least
// one group); the next address to show follows the last group shown.
func viewRanges(p api.Preview) rangeView {
	v := rangeView{Name: strings.Join(p.Target.Addresses, ", "), Role: p.Target.Role, Next: p.Next}
	if p.Target.AgentID != "" {
		v.Role += " " + p.Target.AgentID
	}
	rows := 0
	for i, g := range p.Groups {
		gv := groupView{Addresses: g.Addresses, Filter: g.From + "-" + g.To, Endpoints: g.Endpoints,
			previewView: viewPreview(api.Preview{Comparison: g.Comparison})}
		if i > 0 && rows+len(gv.Rows) > pageRows {
			v.Next = g.From
			break
		}
		rows += len(gv.Rows)
		if len(gv.Changed) > 0 {
			v.Changed++
		}
		v.Groups = append(v.Groups, gv)
	}
	return v
}

// preview shows, for each target of the form, its plan under the draft
// beside its plan under the policy in force.
func (c *Console) preview(w http.ResponseWriter, r *http.Request) {
	d, ok := c.readDraft(w, r)
	if !ok {
		return
	}
	f := previewForm{Endpoints: r.PostFormValue("endpoints"), Addresses: r.PostFormValue("addresses"),
		Ranges: r.PostFormValue("ranges"), Start: r.PostFormValue("start"), Role: r.PostFormValue("role"), AgentID: strings.TrimSpace(r.PostFormValue("agent_id")), Trigger: r.PostFormValue("trigger")}
	if f.Role == "" {
		f.Role = "client"
	}
	data := map[string]any{"Draft": d, "Form": f, "Triggers": triggers}
	// The update source page posts only the policy: the targets come next.
	_, asked := r.PostForm["endpoints"]
	if r.Method != http.MethodPost || !asked || d.Problems != nil {
		code := http.StatusOK
		if d.Problems != nil && r.Method == http.MethodPost {
			code = http.StatusBadRequest
		}
		c.render(w, r, code, "preview", data)
		return
	}
	ts, err := f.targets()
	if err != nil {
		data["Error"] = upperFirst(err.Error()) + "."
		c.render(w, r, http.StatusBadRequest, "preview", data)
		return
	}
	code, body, err := c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodPost, api.PathPolicyPreview,
		api.PreviewRequest{Document: d.Doc, Trigger: f.Trigger, Targets: ts})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if code != http.StatusOK {
		data["Error"] = targetMessage(apiMessage(body), ts)
		c.render(w, r, code, "preview", data)
		return
	}
	var res api.PreviewResult
	if err := json.Unmarshal(body, &res); err != nil {
		c.fail(w, r, fmt.Errorf("read the preview: %w", err))
		return
	}
	views := []previewView{}
	var sets []rangeView
	for i, p := range res.Previews {
		if len(ts[i].Ranges) > 0 {
			sets = append(sets, viewRanges(p))
			continue
		}
		views = append(views, viewPreview(p))
	}
	data["Result"] = views
	data["Sets"] = sets
	data["PolicyVersion"] = res.PolicyVersion
	c.render(w, r, http.StatusOK, "preview", data)
}

// downChoice is one check box of the what-if form.
type downChoice struct {
	Source, Label string
	Checked       bool
}

// downChoices lists the sources p can send an endpoint to: the server,
// the origin, then every source of the Customized Update Source List in
// the order of its first entry.
func downChoices(p *policy.Policy, checked []string) []downChoice {
	is := func(s string) bool { return slices.Contains(checked, s) }
	out := []downChoice{{Source: "server", Label: "the management server", Checked: is("server")},
		{Source: "origin", Label: "the origin (" + p.Origin + ")", Checked: is("origin")}}
	entries := map[string][]string{}
	var order []string
	for i, e := range p.CustomSources {
		src := e.Src()
		if src.Kind == policy.Origin {
			continue
		}
		k := src.String()
		if _, ok := entries[k]; !ok {
			order = append(order, k)
		}
		entries[k] = append(entries[k], strconv.Itoa(i+1))
	}
	for _, k := range order {
		word := "entry"
		if len(entries[k]) > 1 {
			word = "entries"
		}
		out = append(out, downChoice{Source: k, Label: k + " (" + word + " " + strings.Join(entries[k], ", ") + ")", Checked: is(k)})
	}
	return out
}

// whatIfCategory is one category's counts on the what-if page.
type whatIfCategory struct {
	Name string
	*whatif.CategoryResult
}

// whatIfGroup is one group of endpoints on the what-if page.
type whatIfGroup struct {
	whatif.Group
	Ends []string // the source at the end per category of the page, in order
}

// whatIf shows where every enrolled endpoint would end with the sources
// checked down, under the draft.
func (c *Console) whatIf(w http.ResponseWriter, r *http.Request) {
	d, ok := c.readDraft(w, r)
	if !ok {
		return
	}
	down := r.PostForm["down"]
	trig := r.PostFormValue("trigger")
	data := map[string]any{"Draft": d, "Triggers": triggers, "Trigger": trig}
	if d.parsed != nil {
		data["Choices"] = downChoices(d.parsed, down)
	}
	_, asked := r.PostForm["run"]
	if r.Method != http.MethodPost || !asked || d.Problems != nil {
		code := http.StatusOK
		if d.Problems != nil && r.Method == http.MethodPost {
			code = http.StatusBadRequest
		}
		c.render(w, r, code, "whatif", data)
		return
	}
	code, body, err := c.be.Do(r.Context(), Actor(accountOf(r)), http.MethodPost, api.PathPolicyWhatIf,
		api.WhatIfRequest{Document: d.Doc, Down: down, Trigger: trig})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if code != http.StatusOK {
		data["Error"] = apiMessage(body)
		c.render(w, r, code, "whatif", data)
		return
	}
	var res api.WhatIfResult
	if err := json.Unmarshal(body, &res); err != nil {
		c.fail(w, r, fmt.Errorf("read the what-if: %w", err))
		return
	}
	if res.Result == nil {
		c.fail(w, r, errors.New("read the what-if: the answer has no result"))
		return
	}
	var cats []whatIfCategory
	for _, cat := range category.All {
		if cr := res.Categories[cat]; cr != nil {
			cats = append(cats, whatIfCategory{Name: string(cat), CategoryResult: cr})
		}
	}
	groups := make([]whatIfGroup, len(res.Groups))
	for i, g := range res.Groups {
		groups[i].Group = g
		for _, cat := range cats {
			at, ok := g.EndAt[category.Category(cat.Name)]
			if !ok {
				at = "—"
			}
			groups[i].Ends = append(groups[i].Ends, at)
		}
	}
	deployed := []string{}
	for _, name := range slices.Sorted(maps.Keys(res.Deployed)) {
		deployed = append(deployed, name+" "+res.Deployed[name].Version+" ("+byteCount(res.Deployed[name].Bytes)+")")
	}
	data["Result"] = res
	data["Categories"] = cats
	data["Groups"] = groups
	data["Deployed"] = deployed
	data["Bytes"] = []struct{ Who, ID, N string }{
		{"the management server", "bytes-server", byteCount(res.Bytes.Server)},
		{"the WAN (the origin)", "bytes-wan", byteCount(res.Bytes.WAN)},
		{"update agents", "bytes-agents", byteCount(res.Bytes.Agents)},
		{"mirrors (URL sources)", "bytes-urls", byteCount(res.Bytes.URLs)},
		{"still needed by endpoints left with no source", "bytes-stranded", byteCount(res.Bytes.Stranded)},
	}
	c.render(w, r, http.StatusOK, "whatif", data)
}

// byteCount writes n in bytes with thousands separators.
func byteCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if n == 1 {
		return "1 byte"
	}
	return b.String() + " bytes"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
