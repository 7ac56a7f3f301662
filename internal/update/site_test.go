package update

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/sitedoc"
	"github.com/cascade-update/cascade/internal/trust"
)

// TestSiteDocuments: an endpoint with a site repository installs its
// domain settings first, then components within the deployment caps, then
// the programs approved for its domain; lifting the cap and approving a
// newer program take effect on the next run.
func TestSiteDocuments(t *testing.T) {
	w := newWorld(t)
	w.publish("1.0")
	w.publish("2.0")
	for _, v := range []string{"5.0", "5.1"} {
		if _, err := w.origin.Publish(context.Background(), repo.Item{Category: "programs", Name: "agent", Version: v,
			Files: []repo.File{{Name: "setup.bin", Data: []byte("agent " + v)}}}); err != nil {
			t.Fatal(err)
		}
	}
	site, err := repo.Init(filepath.Join(t.TempDir(), "site"), repo.InitOptions{Options: repo.Options{Now: w.now},
		Settings: repo.Settings{Kind: repo.Site, Bins: 16}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/vendor/", http.FileServer(http.Dir(filepath.Dir(w.origin.PublishedDir()))))
	mux.Handle("/site/", http.FileServer(http.Dir(filepath.Dir(site.PublishedDir()))))
	server := w.serve(mux)
	publishSite := func(ver string, caps, programs map[string]string) {
		t.Helper()
		dep, _ := json.Marshal(sitedoc.Deployment{Components: caps})
		dom, _ := json.Marshal(sitedoc.DomainSettings{Settings: json.RawMessage(`{"scan":"daily"}`), Programs: programs})
		pol := "origin: https://au.vendor.invalid/\nserver: " + server + "\n"
		if _, err := site.Publish(context.Background(),
			repo.Item{Category: "domain_settings", Name: sitedoc.PolicyItem, Version: ver, Files: []repo.File{{Name: "policy.yaml", Data: []byte(pol)}}},
			repo.Item{Category: "domain_settings", Name: sitedoc.DeploymentItem, Version: ver, Files: []repo.File{{Name: sitedoc.DeploymentFile, Data: dep}}},
			repo.Item{Category: "domain_settings", Name: sitedoc.DomainItem("berlin"), Version: ver, Files: []repo.File{{Name: sitedoc.SettingsFile, Data: dom}}},
			repo.Item{Category: "domain_settings", Name: sitedoc.DomainItem("paris"), Version: ver, Files: []repo.File{{Name: sitedoc.SettingsFile, Data: []byte(`{}`)}}},
		); err != nil {
			t.Fatal(err)
		}
	}
	publishSite("1", map[string]string{"pattern": "1.0"}, map[string]string{"agent": "5.0"})

	e := w.endpoint(fetch.Options{})
	siteRoot, _ := site.TrustedRoot()
	siteStore, err := trust.Init(filepath.Join(e.dir, "trust", "site"), siteRoot, trust.Options{Kind: "site", Now: w.now})
	if err != nil {
		t.Fatal(err)
	}
	e.runner.o.Site = siteStore
	e.runner.o.Domain = "berlin"
	pol, err := policy.Parse([]byte("origin: https://au.vendor.invalid/\nserver: " + server + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	pl := plan.For(pol, plan.Endpoint{Role: plan.RoleClient, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, plan.Scheduled)
	e.runner.o.Resolve = func(s policy.Source) ([]string, error) { return []string{server}, nil }
	run := func() *report.Report {
		rep := e.runner.Run(context.Background(), Request{Plan: pl})
		if rep.Result == report.Failed {
			for _, c := range rep.Categories {
				t.Logf("%s: %s %s %+v", c.Category, c.Result, c.Error, c.Attempts)
			}
			t.Fatal("run failed")
		}
		return rep
	}
	rep := run()
	if got := []category.Category{rep.Categories[0].Category, rep.Categories[1].Category}; got[0] != category.DomainSettings {
		t.Fatalf("order %v, want domain_settings first", got)
	}
	checkItems(t, e.install, category.DomainSettings, map[string]string{sitedoc.PolicyItem: "1", sitedoc.DeploymentItem: "1", sitedoc.DomainItem("berlin"): "1"})
	checkItems(t, e.install, category.Components, map[string]string{"pattern": "1.0"})
	checkItems(t, e.install, category.Programs, map[string]string{"agent": "5.0"})

	// The server released the hold (or rolled back) and announced it: a
	// notify-components run updates components only, to the announced
	// version, before the endpoint holds the newly signed caps.
	notified := plan.For(pol, plan.Endpoint{Role: plan.RoleClient, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, plan.NotifyComponents)
	for _, ver := range []string{"2.0", "1.0"} {
		rep := e.runner.Run(context.Background(), Request{Plan: notified, Announced: map[string]string{"pattern": ver}})
		if rep.Result != report.Updated || len(rep.Categories) != 1 {
			t.Fatalf("notified run announcing %s: %s %+v", ver, rep.Result, rep.Categories)
		}
		checkItems(t, e.install, category.Components, map[string]string{"pattern": ver})
	}
	checkItems(t, e.install, category.DomainSettings, map[string]string{sitedoc.PolicyItem: "1", sitedoc.DeploymentItem: "1", sitedoc.DomainItem("berlin"): "1"})

	publishSite("2", nil, map[string]string{"agent": "5.1"})
	run()
	checkItems(t, e.install, category.Components, map[string]string{"pattern": "2.0"})
	checkItems(t, e.install, category.Programs, map[string]string{"agent": "5.1"})
	v, _ := e.install.Current(category.Programs)
	if b, err := os.ReadFile(filepath.Join(v.Dir, "agent", "setup.bin")); err != nil || string(b) != "agent 5.1" {
		t.Fatalf("program payload %q %v", b, err)
	}

	// A run that installs new domain settings plans the categories that
	// follow under the policy it installed (here: a mirror first).
	mirror := w.serve(http.FileServer(http.Dir(filepath.Dir(w.origin.PublishedDir()))))
	e.runner.o.Resolve = func(s policy.Source) ([]string, error) {
		if s.Kind == policy.URL {
			return []string{s.URL}, nil
		}
		return []string{server}, nil
	}
	replans := 0
	replan := func() (plan.Plan, error) {
		replans++
		return planFor(t, "https://au.vendor.invalid/", plan.Scheduled, mirror), nil
	}
	w.publish("3.0")
	publishSite("3", nil, map[string]string{"agent": "5.1"})
	rep = e.runner.Run(context.Background(), Request{Plan: pl, Replan: replan})
	comps := rep.Category(category.Components)
	if replans != 1 || comps.Source != mirror || comps.After["pattern"] != "3.0" ||
		rep.Plan.Categories[category.Components][0].Source.String() != mirror ||
		rep.Plan.Categories[category.DomainSettings][0].Source.String() != "server" {
		t.Fatalf("run after a new policy: %d replans, components %+v, plan %+v", replans, comps, rep.Plan.Categories)
	}
	if rep := e.runner.Run(context.Background(), Request{Plan: pl, Replan: replan}); replans != 1 || rep.Result != report.UpToDate {
		t.Fatalf("up-to-date run: %d replans, %s", replans, rep.Result)
	}
}

func checkItems(t *testing.T, s *install.Store, cat category.Category, want map[string]string) {
	t.Helper()
	v, err := s.Current(cat)
	if err != nil {
		t.Fatalf("%s: %v", cat, err)
	}
	got := map[string]string{}
	for _, it := range v.Items {
		got[it.Name] = it.Version
	}
	if len(got) != len(want) {
		t.Fatalf("%s items %v, want %v", cat, got, want)
	}
	for k, ver := range want {
		if got[k] != ver {
			t.Fatalf("%s items %v, want %v", cat, got, want)
		}
	}
}

// TestDeployedCaps: announced versions replace the installed caps of the
// components they name, and only those.
func TestDeployedCaps(t *testing.T) {
	for _, c := range []struct {
		name                       string
		installed, announced, want map[string]string
	}{
		{"nothing announced", map[string]string{"pattern": "1.0"}, nil, map[string]string{"pattern": "1.0"}},
		{"hold released", map[string]string{"pattern": "1.0"}, map[string]string{"pattern": "1.1"}, map[string]string{"pattern": "1.1"}},
		{"rolled back", nil, map[string]string{"pattern": "0.9"}, map[string]string{"pattern": "0.9"}},
		{"other caps kept", map[string]string{"pattern": "1.0", "engine": "7"}, map[string]string{"pattern": "1.1"},
			map[string]string{"pattern": "1.1", "engine": "7"}},
	} {
		got := deployedCaps(c.installed, c.announced)
		if !maps.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	installed := map[string]string{"pattern": "1.0"}
	deployedCaps(installed, map[string]string{"pattern": "2.0"})
	if installed["pattern"] != "1.0" {
		t.Error("the installed caps were modified")
	}
}
