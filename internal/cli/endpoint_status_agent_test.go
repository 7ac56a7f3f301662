package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/agent"
)

func TestPrintAgentStatus(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	st := &agent.Status{ID: "ua-1", Listen: "0.0.0.0:8080", TLS: true, Started: at,
		Repositories: map[string]*agent.RepoStatus{
			"vendor": {Timestamp: 12, Snapshot: 11, Source: "server", Refreshed: at,
				Items: map[string]map[string]string{"components": {"pattern": "3.0", "engine": "7.1"}, "programs": {}}},
			"site": {Timestamp: 4, Snapshot: 4, Error: "agent:ua-2: unreachable", ErrorAt: at},
		},
		Requests: 1500, NotModified: 900, Unavailable: 3, BytesServed: 3 << 30, UpstreamFetches: 7, Clients: 42, PeakDownloads: 17}
	var out bytes.Buffer
	printAgentStatus(&out, st)
	for _, want := range []string{
		"update agent ua-1 serving on 0.0.0.0:8080 (https)",
		"vendor  timestamp 12, snapshot 11, from server at 2026-03-04 05:06:07Z",
		"components: engine 7.1, pattern 3.0",
		"programs: (none)",
		"last refresh failed at 2026-03-04 05:06:07Z: agent:ua-2: unreachable",
		"42 clients, 1500 requests (900 not modified, 3 turned away busy), 3.0 GiB served, 7 upstream fetches, peak 17 downloads",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Index(out.String(), "site") > strings.Index(out.String(), "vendor") {
		t.Error("repositories not sorted")
	}
	out.Reset()
	printAgentStatus(&out, nil)
	if !strings.Contains(out.String(), "not serving yet") {
		t.Errorf("no status: %s", out.String())
	}
}
