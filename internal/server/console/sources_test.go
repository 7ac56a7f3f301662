package console

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/policy"
)

const testBase = "origin: https://origin.example/\nserver: https://server.example/\n"

func mustParse(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPolicyYAMLIsWhatCheckAccepts: a draft read from a document and
// written again is the same policy (policy.Parse), defaults included.
func TestPolicyYAMLIsWhatCheckAccepts(t *testing.T) {
	doc := testBase + "clients: {source: customized}\nagents: {only_from_server: true}\nfallback_to_server: {programs: false}\n" +
		"custom_sources:\n  - {addresses: 10.1.0.0/16, source: \"agent:ua-1\"}\n  - {addresses: \"2001:db8::/48\", source: \"https://m.example/\"}\n"
	d, err := readDraft([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out := policyYAML(d)
	got, want := mustParse(t, out), mustParse(t, doc)
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("round trip\n got %+v\nwant %+v\nYAML:\n%s", got, want, out)
	}
	if !got.FallbackToServer.Components || got.FallbackToServer.Programs || got.Agents.Source != policy.Standard {
		t.Fatalf("defaults lost: %+v", got)
	}
	// An empty list is written as one, and parses.
	d.CustomSources = nil
	if p := mustParse(t, policyYAML(d)); len(p.CustomSources) != 0 {
		t.Fatalf("empty list: %+v", p.CustomSources)
	}
	// A document that does not decode is refused with the policy's own
	// message; an invalid entry is read, to be shown and corrected.
	if _, err := readDraft([]byte(testBase + "bogus: 1\n")); err == nil || !strings.Contains(err.Error(), `unknown field "bogus"`) {
		t.Fatalf("unknown field: %v", err)
	}
	d, err = readDraft([]byte(testBase + "custom_sources:\n  - {addresses: 10.0.0.300, source: \"agent:a\"}\n"))
	if err != nil || len(d.CustomSources) != 1 {
		t.Fatalf("invalid entry: %+v %v", d, err)
	}
	_, problems := checkDraft(d)
	if len(problems[1]) != 1 || !strings.Contains(problems[1][0], `"10.0.0.300" is not an IP address`) || len(problems[0]) != 0 {
		t.Fatalf("problems by entry: %v", problems)
	}
}

// TestCSVRoundTrip: the list written as CSV reads back the same,
// with URLs holding commas and quotes; the header, comments and empty
// lines are skipped; a line with the wrong number of columns is refused
// with its number.
func TestCSVRoundTrip(t *testing.T) {
	list := []policy.Entry{
		{Addresses: "10.1.0.1-10.1.0.254", Source: "agent:ua-1"},
		{Addresses: "10.2.0.7", Source: "https://m.example/a,b/\"q\""},
		{Addresses: "10.3.0.0/16", Source: "https://origin.example/"},
		{Addresses: "2001:db8:10::/48", Source: "agent:ua-6"},
	}
	text := listCSV(list)
	if !strings.HasPrefix(text, "addresses,source\n10.1.0.1-10.1.0.254,agent:ua-1\n") {
		t.Fatalf("CSV:\n%s", text)
	}
	got, err := readCSV([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(list) {
		t.Fatalf("round trip\n got %v\nwant %v", got, list)
	}
	if got, err := readCSV([]byte("\xef\xbb\xbfADDRESSES,Source\r\n10.1.0.0/16,agent:ua-1\r\n")); err != nil || len(got) != 1 || got[0].Addresses != "10.1.0.0/16" {
		t.Fatalf("with a byte order mark and CRLF: %v %v", got, err)
	}
	got, err = readCSV([]byte("# exported\n\n 10.1.0.0/16 , agent:ua-1\n"))
	if err != nil || len(got) != 1 || got[0] != (policy.Entry{Addresses: "10.1.0.0/16", Source: "agent:ua-1"}) {
		t.Fatalf("without header: %v %v", got, err)
	}
	if _, err := readCSV([]byte("addresses,source\n10.1.0.0/16,agent:a\n10.2.0.0/16\n")); err == nil || err.Error() != "CSV line 3: want 2 columns (addresses,source), found 1" {
		t.Fatalf("short line: %v", err)
	}
	if _, err := readCSV([]byte("10.1.0.0/16,\"agent:a\n")); err == nil || !strings.HasPrefix(err.Error(), "CSV line 1:") {
		t.Fatalf("open quote: %v", err)
	}
}

func TestAddressKind(t *testing.T) {
	for in, want := range map[string]string{"10.1.0.1-10.1.0.9": "range", "10.1.2.3": "single", "10.1.0.0/16": "cidr",
		"2001:db8::/32": "prefix", "2001:db8::1-2001:db8::9": "range", "::ffff:10.0.0.0/104": "cidr", "2001:db8::1": "single"} {
		if got := addressKind(in); got != want {
			t.Errorf("addressKind(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDiffPolicies: added, removed, moved and changed entries and the
// settings changed, with their positions.
func TestDiffPolicies(t *testing.T) {
	old := mustParse(t, testBase+"custom_sources:\n"+
		"  - {addresses: 10.1.0.0/16, source: \"agent:a\"}\n"+ // 1: stays
		"  - {addresses: 10.2.0.0/16, source: \"agent:b\"}\n"+ // 2: removed
		"  - {addresses: 10.3.0.0/16, source: \"agent:c\"}\n"+ // 3: moved to 4
		"  - {addresses: 10.4.0.0/16, source: \"agent:d\"}\n"+ // 4: source changed
		"  - {addresses: 10.5.0.0/24, source: \"agent:e\"}\n") // 5: rewritten as a range
	new := mustParse(t, testBase+"clients: {source: customized}\nfallback_to_server: {programs: false}\ncustom_sources:\n"+
		"  - {addresses: 10.1.0.0/16, source: \"agent:a\"}\n"+
		"  - {addresses: 10.4.0.0/16, source: \"agent:x\"}\n"+
		"  - {addresses: 10.5.0.0-10.5.0.255, source: \"agent:e\"}\n"+
		"  - {addresses: 10.3.0.0/16, source: \"agent:c\"}\n"+
		"  - {addresses: 10.9.0.1, source: \"https://m.example/\"}\n")
	d := diffPolicies(old, new)
	var got []string
	for _, s := range d.Settings {
		got = append(got, fmt.Sprintf("setting %s %s->%s", s.Field, s.Before, s.After))
	}
	for _, c := range d.Added {
		got = append(got, fmt.Sprintf("added %d %s %s", c.To, c.After.Addresses, c.After.Source))
	}
	for _, c := range d.Removed {
		got = append(got, fmt.Sprintf("removed %d %s %s", c.From, c.Before.Addresses, c.Before.Source))
	}
	for _, c := range d.Moved {
		got = append(got, fmt.Sprintf("moved %d->%d %s", c.From, c.To, c.After.Addresses))
	}
	for _, c := range d.Changed {
		got = append(got, fmt.Sprintf("changed %d->%d %s %s => %s %s", c.From, c.To, c.Before.Addresses, c.Before.Source, c.After.Addresses, c.After.Source))
	}
	want := []string{
		"setting clients.source standard->customized",
		"setting fallback_to_server.programs true->false",
		"added 5 10.9.0.1 https://m.example/",
		"removed 2 10.2.0.0/16 agent:b",
		"moved 3->4 10.3.0.0/16",
		"changed 4->2 10.4.0.0/16 agent:d => 10.4.0.0/16 agent:x",
		"changed 5->3 10.5.0.0/24 agent:e => 10.5.0.0-10.5.0.255 agent:e",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diff\n got %q\nwant %q", got, want)
	}
	if d.Empty() || !diffPolicies(old, old).Empty() {
		t.Fatal("Empty is wrong")
	}
	// Moving one entry to the top is one move, not n-1.
	top := mustParse(t, testBase+"custom_sources:\n"+
		"  - {addresses: 10.5.0.0/24, source: \"agent:e\"}\n"+
		"  - {addresses: 10.1.0.0/16, source: \"agent:a\"}\n"+
		"  - {addresses: 10.2.0.0/16, source: \"agent:b\"}\n"+
		"  - {addresses: 10.3.0.0/16, source: \"agent:c\"}\n"+
		"  - {addresses: 10.4.0.0/16, source: \"agent:d\"}\n")
	if m := diffPolicies(old, top).Moved; len(m) != 1 || m[0].From != 5 || m[0].To != 1 {
		t.Fatalf("moved to the top: %+v", m)
	}
}

// TestDiffShown: the review's room is shared between the lists, a short
// list shown whole and the room it leaves going to the longer ones.
func TestDiffShown(t *testing.T) {
	l := func(n int) []EntryChange { return make([]EntryChange, n) }
	d := &Diff{Added: l(2), Removed: l(1000), Changed: l(400)}
	s := d.Shown(600)
	if len(s.Added) != 2 || len(s.Moved) != 0 || len(s.Removed) != 299 || len(s.Changed) != 299 ||
		s.MoreAdded != 0 || s.MoreRemoved != 701 || s.MoreChanged != 101 {
		t.Fatalf("shown %d/%d/%d/%d, more %d/%d/%d/%d", len(s.Added), len(s.Removed), len(s.Moved), len(s.Changed),
			s.MoreAdded, s.MoreRemoved, s.MoreMoved, s.MoreChanged)
	}
	if s := d.Shown(5000); len(s.Removed) != 1000 || s.MoreRemoved+s.MoreChanged+s.MoreAdded != 0 {
		t.Fatalf("with room for all: %+v", s)
	}
}
