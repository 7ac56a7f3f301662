package console

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cascade-update/cascade/internal/policy"
)

// The draft of the update source page is a policy document that may be
// invalid: a policy.Policy read without validation, so that an invalid
// entry stays in the list, next to its problem, until it is corrected.
// It is validated by policy.Parse on its YAML form (policyYAML), exactly
// as `cascade policy check` validates a file.

// newDraft returns an empty draft with the document's defaults.
func newDraft() *policy.Policy {
	return &policy.Policy{
		Clients:          policy.Clients{Source: policy.Standard},
		Agents:           policy.Agents{Source: policy.Standard},
		FallbackToServer: policy.Fallback{Components: true, DomainSettings: true, Programs: true},
	}
}

// readDraft decodes a policy document without validating it: the fields
// absent take the document's defaults. A document that does not decode
// (not YAML, an unknown field, a wrong type) is refused with the one-line
// error `cascade policy check` gives for it.
func readDraft(data []byte) (*policy.Policy, error) {
	if len(data) > policy.MaxSize {
		return nil, fmt.Errorf("policy is larger than %d bytes", policy.MaxSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("policy is empty")
	}
	d := newDraft()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(d)
	if err == nil {
		var extra any
		if dec.Decode(&extra) != io.EOF {
			err = errors.New("more than one document")
		}
	}
	if err != nil {
		if _, perr := policy.Parse(data); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("read the policy: %w", err)
	}
	if d.Clients.Source == "" {
		d.Clients.Source = policy.Standard
	}
	if d.Agents.Source == "" {
		d.Agents.Source = policy.Standard
	}
	return d, nil
}

// policyYAML serialises a draft to the complete policy document, as
// `cascade policy check` and PUT /api/v1/policy accept it. It is the
// `policy` field every form of the page posts (to /sources, and to
// /sources/preview and /sources/whatif).
func policyYAML(d *policy.Policy) string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	out := *d
	if out.CustomSources == nil {
		out.CustomSources = []policy.Entry{}
	}
	if err := enc.Encode(out); err != nil {
		// Strings, booleans and a list of string pairs always encode.
		panic(fmt.Sprintf("console: encode a policy draft: %v", err))
	}
	_ = enc.Close()
	return buf.String()
}

// checkDraft validates a draft with policy.Parse. It returns the parsed
// policy when valid, and otherwise each problem by the 1-based entry it
// concerns (0: the document as a whole).
func checkDraft(d *policy.Policy) (*policy.Policy, map[int][]string) {
	p, err := policy.Parse([]byte(policyYAML(d)))
	if err == nil {
		return p, nil
	}
	out := map[int][]string{}
	var ve *policy.ValidationError
	if !errors.As(err, &ve) {
		out[0] = []string{err.Error()}
		return nil, out
	}
	for i, pr := range ve.Problems {
		n := ve.Entry(i)
		if n > len(d.CustomSources) {
			n = 0
		}
		out[n] = append(out[n], pr)
	}
	return nil, out
}

// csvHeader is the first line of an exported CSV list: one entry per
// line, its addresses and its source, as in the policy document.
var csvHeader = []string{"addresses", "source"}

// listCSV writes the list as CSV (docs/console.md, Update source page).
func listCSV(entries []policy.Entry) string {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(csvHeader)
	for _, e := range entries {
		_ = w.Write([]string{e.Addresses, e.Source})
	}
	w.Flush()
	return buf.String()
}

// readCSV reads a list written as CSV: two columns, addresses and
// source; a first line "addresses,source" is the header; a byte order
// mark, empty lines and lines starting with # are skipped. The entries
// are not validated here.
func readCSV(data []byte) ([]policy.Entry, error) {
	if len(data) > policy.MaxSize {
		return nil, fmt.Errorf("the CSV list is larger than %d bytes", policy.MaxSize)
	}
	// A spreadsheet may start the file with a byte order mark.
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	out := []policy.Entry{}
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("CSV line %d: %v", pe.StartLine, pe.Err)
			}
			return nil, fmt.Errorf("read the CSV list: %w", err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) != 2 {
			return nil, fmt.Errorf("CSV line %d: want 2 columns (addresses,source), found %d", line, len(rec))
		}
		a, s := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if first && strings.EqualFold(a, csvHeader[0]) && strings.EqualFold(s, csvHeader[1]) {
			continue
		}
		out = append(out, policy.Entry{Addresses: a, Source: s})
	}
}

// addressKind names the form of an entry's addresses as the entry form
// offers them: "range" (from-to), "single", "cidr" (IPv4) or "prefix"
// (IPv6).
func addressKind(s string) string {
	s = strings.TrimSpace(s)
	switch {
	case strings.Contains(s, "/"):
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is6() && !p.Addr().Is4In6() {
			return "prefix"
		}
		return "cidr"
	case strings.Contains(s, "-"):
		return "range"
	}
	return "single"
}

// Diff is what saving a draft changes in the policy in force.
type Diff struct {
	Settings []SettingChange
	Added    []EntryChange // To: the position in the draft
	Removed  []EntryChange // From: the position in the version in force
	Moved    []EntryChange
	Changed  []EntryChange
}

// Shown is a part of a Diff's entries that the review lists: each list
// cut to what the page has room for, and how many of each it leaves out.
type Shown struct {
	Added, Removed, Moved, Changed                 []EntryChange
	MoreAdded, MoreRemoved, MoreMoved, MoreChanged int
}

// Shown lists at most n of d's entry changes in all, shared between the
// lists (a short list whole, the room it leaves to the longer ones), so
// that the review of a list replaced whole stays under 150 KB; the counts
// say what is left out.
func (d *Diff) Shown(n int) Shown {
	lists := []*[]EntryChange{&d.Added, &d.Removed, &d.Moved, &d.Changed}
	order := []int{0, 1, 2, 3}
	slices.SortStableFunc(order, func(a, b int) int { return len(*lists[a]) - len(*lists[b]) })
	shown, more := make([][]EntryChange, 4), make([]int, 4)
	for k, i := range order {
		l := *lists[i]
		m := min(len(l), n/(len(order)-k))
		n -= m
		shown[i], more[i] = l[:m], len(l)-m
	}
	return Shown{Added: shown[0], Removed: shown[1], Moved: shown[2], Changed: shown[3],
		MoreAdded: more[0], MoreRemoved: more[1], MoreMoved: more[2], MoreChanged: more[3]}
}

// Empty reports whether the draft is the version in force.
func (d *Diff) Empty() bool {
	return len(d.Settings)+len(d.Added)+len(d.Removed)+len(d.Moved)+len(d.Changed) == 0
}

// SettingChange is a setting of the document whose value changes.
type SettingChange struct {
	Field, Before, After string
}

// EntryChange is an entry added, removed, moved or changed: its 1-based
// positions before (From) and after (To), 0 where it has none.
type EntryChange struct {
	From, To      int
	Before, After policy.Entry
}

// settings are the document's settings, by their field in the document.
func settings(p *policy.Policy) [][2]string {
	b := func(v bool) string { return fmt.Sprint(v) }
	return [][2]string{
		{"origin", p.Origin},
		{"server", p.Server},
		{"download_from_origin", b(p.DownloadFromOrigin)},
		{"clients.source", string(p.Clients.Source)},
		{"agents.source", string(p.Agents.Source)},
		{"agents.only_from_server", b(p.Agents.OnlyFromServer)},
		{"agents.always_from_standard_source", b(p.Agents.AlwaysFromStandardSource)},
		{"fallback_to_server.components", b(p.FallbackToServer.Components)},
		{"fallback_to_server.domain_settings", b(p.FallbackToServer.DomainSettings)},
		{"fallback_to_server.programs", b(p.FallbackToServer.Programs)},
	}
}

// entryID is what makes two entries of valid policies the same entry:
// the same addresses and the same source, however written (a valid
// policy holds no two entries with the same identity).
func entryID(e policy.Entry) string { return e.Range().String() + " " + e.Key() }

// diffPolicies compares the version in force (old) with a draft (new),
// both valid. Entries present in both are matched by identity; those
// whose order relative to the others changed are moved (the fewest moves
// that explain the new order); an entry removed and an entry added with
// the same addresses or the same source are one entry changed.
func diffPolicies(old, new *policy.Policy) *Diff {
	d := &Diff{}
	os, ns := settings(old), settings(new)
	for i := range os {
		if os[i][1] != ns[i][1] {
			d.Settings = append(d.Settings, SettingChange{Field: os[i][0], Before: os[i][1], After: ns[i][1]})
		}
	}
	oldPos := map[string]int{}
	for i, e := range old.CustomSources {
		oldPos[entryID(e)] = i
	}
	var common []int // for each new entry present in old (in new order): its old index
	var commonNew []int
	matched := map[int]bool{} // old indexes present in new
	var added []int
	for j, e := range new.CustomSources {
		i, ok := oldPos[entryID(e)]
		if !ok {
			added = append(added, j)
			continue
		}
		matched[i] = true
		common, commonNew = append(common, i), append(commonNew, j)
		if o := old.CustomSources[i]; o.Addresses != e.Addresses || o.Source != e.Source {
			d.Changed = append(d.Changed, EntryChange{From: i + 1, To: j + 1, Before: o, After: e})
		}
	}
	stay := increasing(common)
	for k, i := range common {
		if !stay[k] {
			d.Moved = append(d.Moved, EntryChange{From: i + 1, To: commonNew[k] + 1,
				Before: old.CustomSources[i], After: new.CustomSources[commonNew[k]]})
		}
	}
	var removed []int
	for i := range old.CustomSources {
		if !matched[i] {
			removed = append(removed, i)
		}
	}
	// Pair a removed entry with an added one that keeps its addresses or
	// its source: an edit of one entry.
	paired := map[int]bool{}
	for _, i := range removed {
		o := old.CustomSources[i]
		k := slices.IndexFunc(added, func(j int) bool {
			n := new.CustomSources[j]
			return !paired[j] && (n.Range() == o.Range() || n.Key() == o.Key())
		})
		if k < 0 {
			d.Removed = append(d.Removed, EntryChange{From: i + 1, Before: o})
			continue
		}
		j := added[k]
		paired[j] = true
		d.Changed = append(d.Changed, EntryChange{From: i + 1, To: j + 1, Before: o, After: new.CustomSources[j]})
	}
	for _, j := range added {
		if !paired[j] {
			d.Added = append(d.Added, EntryChange{To: j + 1, After: new.CustomSources[j]})
		}
	}
	slices.SortFunc(d.Changed, func(a, b EntryChange) int { return a.To - b.To })
	return d
}

// increasing marks a longest increasing subsequence of xs (distinct
// values): the entries that kept their relative order.
func increasing(xs []int) []bool {
	n := len(xs)
	length, prev := make([]int, n), make([]int, n)
	best := -1
	for i := range xs {
		length[i], prev[i] = 1, -1
		for j := range i {
			if xs[j] < xs[i] && length[j]+1 > length[i] {
				length[i], prev[i] = length[j]+1, j
			}
		}
		if best < 0 || length[i] > length[best] {
			best = i
		}
	}
	keep := make([]bool, n)
	for i := best; i >= 0; i = prev[i] {
		keep[i] = true
	}
	return keep
}
