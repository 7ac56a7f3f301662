package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
)

// TestPrintReportNamesServerURL: a run's table names the URL of the
// server that served, and each failed server URL's attempt, when the
// server source has several.
func TestPrintReportNamesServerURL(t *testing.T) {
	now := time.Now()
	rep := &report.Report{ID: "r", Trigger: plan.Manual, Started: now, Finished: now, Result: report.Updated,
		Categories: []*report.Category{{Category: category.Components, Result: report.Updated, Source: "server", URL: "https://b.example:8443/",
			Attempts: []report.Attempt{{Source: "server", URL: "https://a.example:8443/", Class: failure.Unreachable, Error: "connection refused"}}},
			{Category: category.Programs, Result: report.UpToDate, Source: "origin"}}}
	var out strings.Builder
	if err := printReport(&out, rep, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server https://b.example:8443/", "components: server https://a.example:8443/: unreachable: connection refused", "origin"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report table lacks %q:\n%s", want, out.String())
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "programs") && strings.Contains(line, "https://") {
			t.Errorf("a source with one URL is printed with a URL: %q", line)
		}
	}
}
