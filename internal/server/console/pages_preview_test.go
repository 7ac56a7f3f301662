package console

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/whatif"
)

func TestPreviewFormTargets(t *testing.T) {
	f := previewForm{Endpoints: "c1, ep_123\nhost-b", Addresses: "10.0.0.1,\n 10.0.0.2\r\n", Role: "agent", AgentID: "ua-1"}
	got, err := f.targets()
	want := []api.PreviewTarget{{Endpoint: "c1"}, {Endpoint: "ep_123"}, {Endpoint: "host-b"},
		{Addresses: []string{"10.0.0.1", "10.0.0.2"}, Role: "agent", AgentID: "ua-1"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("targets: %+v (%v), want %+v", got, err, want)
	}
	// A client's role is the API's default.
	got, _ = previewForm{Addresses: "10.0.0.1", Role: "client"}.targets()
	if len(got) != 1 || got[0].Role != "" {
		t.Fatalf("client target: %+v", got)
	}
	for _, bad := range []previewForm{{}, {Endpoints: " , \n"}, {Addresses: "10.0.0.0/24"}, {Addresses: "10.0.0.1-10.0.0.9"}, {AgentID: "ua-1"}} {
		if _, err := bad.targets(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestPreviewFormRanges(t *testing.T) {
	f := previewForm{Ranges: "10.0.0.1 - 10.0.0.9, 10.1.0.0/16\n2001:db8::/48\r\n 192.0.2.7 ", Start: " 10.0.0.5 ", Role: "agent", AgentID: "ua-1"}
	got, err := f.targets()
	want := []api.PreviewTarget{{Ranges: []string{"10.0.0.1-10.0.0.9", "10.1.0.0/16", "2001:db8::/48", "192.0.2.7"},
		Start: "10.0.0.5", Limit: pageGroups, Role: "agent", AgentID: "ua-1"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("targets: %+v (%v), want %+v", got, err, want)
	}
	// Blanks separate items on a line too.
	if got := splitRanges("10.0.0.1 10.0.0.2 -  10.0.0.3"); !reflect.DeepEqual(got, []string{"10.0.0.1", "10.0.0.2-10.0.0.3"}) {
		t.Fatalf("splitRanges: %q", got)
	}
	// A range in the addresses of one endpoint points to the sets.
	if _, err := (previewForm{Addresses: "10.0.0.0/24"}).targets(); err == nil || !strings.Contains(err.Error(), "sets of addresses") {
		t.Fatalf("range among addresses: %v", err)
	}
}

// TestViewRangesBudget: groups are shown while their rows fit the page's
// budget, at least one; the next address is the first group not shown.
func TestViewRangesBudget(t *testing.T) {
	var p api.Preview
	p.Target.Addresses = []string{"10.0.0.0/8"}
	g := func(from, to string, rows int) api.PreviewGroup {
		pg := api.PreviewGroup{Addresses: from + "-" + to, From: from, To: to}
		pg.Current.Categories = map[category.Category][]whatif.Step{}
		for i := range rows {
			pg.Current.Categories[category.Components] = append(pg.Current.Categories[category.Components], whatif.Step{Source: fmt.Sprint("agent:a", i)})
		}
		return pg
	}
	p.Groups = []api.PreviewGroup{g("10.0.0.0", "10.0.0.9", pageRows+5), g("10.0.0.10", "10.0.0.19", 1)}
	if v := viewRanges(p); len(v.Groups) != 1 || v.Next != "10.0.0.10" {
		t.Fatalf("one large group: %d groups, next %q", len(v.Groups), v.Next)
	}
	p.Groups = []api.PreviewGroup{g("10.0.0.0", "10.0.0.9", pageRows/2), g("10.0.0.10", "10.0.0.19", pageRows/2), g("10.0.0.20", "10.0.0.29", 1)}
	p.Next = "10.0.0.30"
	if v := viewRanges(p); len(v.Groups) != 2 || v.Next != "10.0.0.20" {
		t.Fatalf("budget: %d groups, next %q", len(v.Groups), v.Next)
	}
	p.Groups = p.Groups[:1]
	if v := viewRanges(p); len(v.Groups) != 1 || v.Next != "10.0.0.30" || v.Groups[0].Filter != "10.0.0.0-10.0.0.9" {
		t.Fatalf("within budget: %+v", v)
	}
}

func TestTargetMessage(t *testing.T) {
	ts := []api.PreviewTarget{{Endpoint: "nobody"}, {Addresses: []string{"10.1"}}, {Ranges: []string{"10.1"}}}
	for msg, want := range map[string]string{
		`targets[0]: no enrolled endpoint has the id or hostname "nobody"`: `Endpoint "nobody": no enrolled endpoint has the id or hostname "nobody"`,
		`targets[1]: address "10.1" is not an IP address`:                  `Addresses: address "10.1" is not an IP address`,
		`targets[2]: ranges: "10.1" is not an IP address`:                  `Sets of addresses: "10.1" is not an IP address`,
		`trigger: unknown trigger "x"`:                                     `trigger: unknown trigger "x"`,
	} {
		if got := targetMessage(msg, ts); got != want {
			t.Errorf("targetMessage(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestByteCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 1: "1 byte", 999: "999 bytes", 1000: "1,000 bytes",
		262144: "262,144 bytes", 1441792: "1,441,792 bytes", -1234567: "-1,234,567 bytes"} {
		if got := byteCount(n); got != want {
			t.Errorf("byteCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseDraft(t *testing.T) {
	if _, probs := parseDraft("  \n"); len(probs) != 1 || !strings.Contains(probs[0], "empty") {
		t.Fatalf("empty draft: %q", probs)
	}
	if _, probs := parseDraft("origin: [\n"); len(probs) != 1 {
		t.Fatalf("YAML error: %q", probs)
	}
	p, probs := parseDraft("origin: https://o.example/\nserver: https://s.example/\nclients: {source: customized}\ncustom_sources:\n" +
		"  - {addresses: 10.0.0.0/8, source: \"agent:ua-1\"}\n  - {addresses: 10.1.0.0/16, source: \"https://m.example/\"}\n" +
		"  - {addresses: 10.2.0.0/16, source: \"agent:ua-1\"}\n  - {addresses: 10.3.0.0/16, source: \"https://o.example/\"}\n")
	if probs != nil {
		t.Fatal(probs)
	}
	var got []string
	for _, c := range downChoices(p, []string{"agent:ua-1"}) {
		got = append(got, c.Source+"|"+c.Label+"|"+map[bool]string{true: "x", false: ""}[c.Checked])
	}
	want := []string{"server|the management server|", "origin|the origin (https://o.example/)|",
		"agent:ua-1|agent:ua-1 (entries 1, 3)|x", "https://m.example/|https://m.example/ (entry 2)|"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("choices:\n%q\nwant\n%q", got, want)
	}
}
