package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/report"
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
