package server_test

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// TestQueuedReportSentWhenTheServerIsBack: the report of a run made while
// the server was down waits in the endpoint's outbox; as soon as the
// daemon's event stream reconnects to the restarted server, the report is
// sent, without waiting for the next run (which may be an hour away, while
// a notified agent's report is what releases its clients).
func TestQueuedReportSentWhenTheServerIsBack(t *testing.T) {
	e := newEnv(t, sqliteDB)
	e.origin.publish(t, "components", "pattern", "1.0")
	e.sync()
	ep := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "client-1", Addresses: []string{"10.1.2.3"}}, quietSchedule)
	runDaemon(t, ep)
	id := endpointID(e, "client-1")
	waitConnected(e, id)

	e.stop()
	if rep := runUpdate(t, ep); rep.Result != report.Failed {
		t.Fatalf("run with the server down: %+v", rep.Categories)
	}
	e.restart()
	testkit.Eventually(t, 30*time.Second, "the report of the run made while the server was down", func() bool {
		var hist []api.Report
		e.call(http.MethodGet, "/api/v1/endpoints/"+id+"/reports", nil, &hist)
		if len(hist) > 1 || len(hist) == 1 && hist[0].Result != string(report.Failed) {
			t.Fatalf("reports at the server: %+v; want the one run made while it was down", hist)
		}
		return len(hist) == 1
	})
}

// TestRefusedReportStaysQueued: a report the server refuses for now
// (429: the endpoint's rate is spent) stays in the endpoint's outbox
// instead of being dropped.
func TestRefusedReportStaysQueued(t *testing.T) {
	e := newEnv(t, sqliteDB, func(c *server.Config) { c.Limits.ReportsPerHour, c.Limits.ReportBurst = 1e-6, 1 })
	e.origin.publish(t, "components", "pattern", "1.0")
	e.sync()
	var dataDir string
	ep := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "client-1", Addresses: []string{"10.1.2.3"}},
		func(c *endpoint.Config) { dataDir = c.DataDir })
	id := endpointID(e, "client-1")
	runUpdate(t, ep)
	runUpdate(t, ep)
	var hist []api.Report
	e.call(http.MethodGet, "/api/v1/endpoints/"+id+"/reports", nil, &hist)
	if len(hist) != 1 {
		t.Fatalf("%d reports at the server, want the first one", len(hist))
	}
	queued, err := filepath.Glob(filepath.Join(dataDir, "server", "outbox", "*.json"))
	if err != nil || len(queued) != 1 {
		t.Fatalf("outbox: %v %v, want the refused report", queued, err)
	}
}
