package server_test

import (
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

var (
	groupAddresses = regexp.MustCompile(`<tbody class="group[^"]*" data-addresses="([^"]+)"`)
	nextStart      = regexp.MustCompile(`name="start" value="([^"]+)"`)
)

// TestConsolePreviewRangeAtScale previews 10.0.0.0/8 with 1024 entries in
// force (a /24 each) and 1024 in the draft (the upper half of each /24):
// 2048 groups, shown a page at a time, each page under 150 KB; followed
// by Next, the pages cover the /8 exactly, in order.
func TestConsolePreviewRangeAtScale(t *testing.T) {
	e := newEnv(t, sqliteDB)
	e.account("victor", store.AccountViewer, testPassword)
	pv, _ := policyInForce(e)
	var inForce, draft strings.Builder
	inForce.WriteString(pv.Document + "clients:\n  source: customized\ncustom_sources:\n")
	draft.WriteString(pv.Document + "clients:\n  source: customized\ncustom_sources:\n")
	for i := range policy.MaxSources {
		fmt.Fprintf(&inForce, "  - {addresses: 10.%d.%d.0/24, source: \"agent:ua-%04d\"}\n", i/256, i%256, i)
		fmt.Fprintf(&draft, "  - {addresses: 10.%d.%d.128/25, source: \"https://m%d.example/\"}\n", i/256, i%256, i%7)
	}
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: inForce.String()}, nil)
	e.enroll("c1", "10.0.0.200")
	viewer := consoleSession(t, e, "victor")

	var groups []string
	pages, largest := 0, 0
	for start := ""; ; pages++ {
		if pages > 300 {
			t.Fatalf("more than 300 pages")
		}
		code, page := viewer(http.MethodPost, "sources/preview", url.Values{"policy": {draft.String()}, "endpoints": {""},
			"ranges": {"10.0.0.0/8"}, "start": {start}})
		if code != http.StatusOK {
			t.Fatalf("page %d: %d %.400s", pages, code, page)
		}
		largest = max(largest, len(page))
		if len(page) > maxPageBytes {
			t.Errorf("page %d (from %q): %d bytes, more than %d", pages, start, len(page), maxPageBytes)
		}
		for _, m := range groupAddresses.FindAllStringSubmatch(page, -1) {
			groups = append(groups, html.UnescapeString(m[1]))
		}
		m := nextStart.FindStringSubmatch(page)
		if m == nil {
			break
		}
		start = m[1]
	}
	// 1024 /24s split in halves, and what follows the last one.
	if len(groups) != 2*policy.MaxSources+1 || pages < 2 {
		t.Fatalf("%d groups on %d pages", len(groups), pages+1)
	}
	next := netip.MustParseAddr("10.0.0.0")
	for i, g := range groups {
		r, err := policy.ParseRange(g)
		if err != nil {
			t.Fatalf("group %d: %v", i, err)
		}
		if r.From != next {
			t.Fatalf("group %d is %s, want it to start at %s", i, g, next)
		}
		next = r.To.Next()
	}
	if groups[len(groups)-1] != "10.4.0.0-10.255.255.255" {
		t.Fatalf("last group %s", groups[len(groups)-1])
	}
	t.Logf("%d groups on %d pages, the largest %d bytes", len(groups), pages+1, largest)
}
