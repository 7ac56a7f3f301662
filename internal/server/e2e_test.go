package server_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
)

// enrollEndpoint enrolls an endpoint through `cascade endpoint enroll`'s
// code path and opens it.
func enrollEndpoint(t *testing.T, e *env, o endpoint.EnrollOptions, tweak ...func(*endpoint.Config)) *endpoint.Endpoint {
	t.Helper()
	dir := t.TempDir()
	o.Server, o.Fingerprint, o.Config = e.url, e.fp.String(), filepath.Join(dir, "endpoint.yaml")
	if o.VendorRootChecks() == 0 {
		root, err := e.origin.repo.TrustedRoot()
		if err != nil {
			t.Fatal(err)
		}
		o.VendorRoot = root // the vendor's root, as the administrator brings it
	}
	switch {
	case o.Token != "":
	case o.Role == string(plan.RoleAgent):
		o.Token = e.agentToken("default", 1)
	default:
		o.Token = e.token("default", 1)
	}
	res, err := endpoint.Enroll(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(res.DataDir, "server", "credential")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v %v", fi, err)
	}
	cfg, err := endpoint.LoadConfig(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	// Short timeouts: the tests stop the server on purpose.
	cfg.Fetch.HeaderTimeout = 2 * time.Second
	cfg.Failover.FailedTTL = time.Millisecond
	for _, f := range tweak {
		f(cfg)
	}
	ep, err := endpoint.Open(cfg, endpoint.Options{Now: time.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

func runUpdate(t *testing.T, ep *endpoint.Endpoint) *report.Report {
	t.Helper()
	rep, err := ep.Update(context.Background(), plan.Manual, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestEnrolledEndpoint: an endpoint enrolls with a pinned fingerprint,
// installs the signed policy and the components from the server, and its
// reports reach the server; while the server is down its reports wait in
// the outbox and arrive once it is back.
func TestEnrolledEndpoint(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		e.origin.publish(t, "components", "pattern", "1.0")
		e.sync()
		ep := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "client-1", Addresses: []string{"10.1.2.3"}})
		rep := runUpdate(t, ep)
		comps, ds := rep.Category(category.Components), rep.Category(category.DomainSettings)
		if comps.Result != report.Updated || comps.Source != "server" || comps.After["pattern"] != "1.0" ||
			ds.Result != report.Updated || ds.Source != "server" {
			t.Fatalf("first run: %+v %+v", comps, ds)
		}
		p, err := ep.Policy()
		if err != nil || !strings.Contains(p.Server, e.addr) {
			t.Fatalf("installed policy: %+v %v", p, err)
		}
		var list struct{ Endpoints []api.Endpoint }
		e.call(http.MethodGet, "/api/v1/endpoints", nil, &list)
		var me api.Endpoint
		for _, x := range list.Endpoints {
			if x.Hostname == "client-1" {
				me = x
			}
		}
		e.call(http.MethodGet, "/api/v1/endpoints/"+me.ID, nil, &me)
		if me.LastReport == nil || me.LastReport.Result != string(report.Updated) || me.Addresses[0] != "10.1.2.3" {
			t.Fatalf("registry: %+v", me)
		}

		e.stop()
		down := runUpdate(t, ep)
		if down.Result != report.Failed {
			t.Fatalf("run with the server down: %+v", down.Category(category.Components))
		}
		e.restart()
		e.origin.publish(t, "components", "pattern", "1.1")
		e.sync()
		up := runUpdate(t, ep)
		if c := up.Category(category.Components); c.Result != report.Updated || c.After["pattern"] != "1.1" {
			t.Fatalf("run after the restart: %+v", c)
		}
		var hist []api.Report
		e.call(http.MethodGet, "/api/v1/endpoints/"+me.ID+"/reports", nil, &hist)
		if len(hist) != 3 || hist[1].Result != string(report.Failed) {
			t.Fatalf("history: %d reports %+v", len(hist), hist)
		}
	})
}
