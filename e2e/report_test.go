//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// serverReports returns the newest limit reports of m as the server
// stored them (the documents endpoints uploaded), newest first.
func (s *site) serverReports(m *member, limit int) []*report.Report {
	s.t.Helper()
	var list []api.Report
	s.call(http.MethodGet, "/api/v1/endpoints/"+m.id+"/reports", url.Values{"limit": {strconv.Itoa(limit)}}, nil, &list)
	out := make([]*report.Report, 0, len(list))
	for _, r := range list {
		doc, ok := s.docs[r.ID]
		if !ok {
			var full api.Report
			s.call(http.MethodGet, "/api/v1/reports/"+r.ID, nil, nil, &full)
			doc = full.Document
			s.docs[r.ID] = doc
		}
		var rep report.Report
		if err := json.Unmarshal(doc, &rep); err != nil {
			s.t.Fatalf("report %s of %s: %v", r.ID, m.name, err)
		}
		out = append(out, &rep)
	}
	return out
}

// findReport waits until the server holds a report of m that match
// accepts, and returns it.
func (s *site) findReport(m *member, timeout time.Duration, what string, match func(*report.Report) bool) *report.Report {
	s.t.Helper()
	var found *report.Report
	testkit.Eventually(s.t, timeout, what, func() bool {
		for _, r := range s.serverReports(m, 20) {
			if match(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// serverReport returns the server's copy of m's run local (a report
// printed by `update --now`), which must arrive at once: the endpoint
// uploads a report before it answers.
func (s *site) serverReport(m *member, local *report.Report) *report.Report {
	s.t.Helper()
	return s.findReport(m, 5*time.Second, m.name+"'s report "+local.ID+" at the server",
		func(r *report.Report) bool { return r.ID == local.ID })
}

// notified waits for the server to hold m's report of the run that
// notification ntf triggered.
func (s *site) notified(m *member, ntf string) *report.Report {
	s.t.Helper()
	return s.findReport(m, time.Minute, m.name+"'s run for notification "+ntf,
		func(r *report.Report) bool { return r.Notification == ntf })
}

// notification returns a notification with its delivery counts.
func (s *site) notification(id string) api.Notification {
	s.t.Helper()
	var n api.Notification
	s.call(http.MethodGet, "/api/v1/notifications/"+id, nil, nil, &n)
	return n
}

// settledNotification returns notification id once want holds for it,
// or as it is after 10 s. An endpoint's report is stored before its
// delivery is marked done (the same request, one statement later), so a
// test that has just seen the last report may read the notification a
// moment before its delivery counts.
func (s *site) settledNotification(id string, want func(api.Notification) bool) api.Notification {
	s.t.Helper()
	var n api.Notification
	testkit.Poll(10*time.Second, func() bool {
		n = s.notification(id)
		return want(n)
	})
	return n
}

// attempt is a source expected among a category's failed attempts.
type attempt struct {
	source string
	class  failure.Class
}

// checkCategory checks how category cat of rep ended: its result, the
// source that updated it ("" when it failed), and every failed attempt
// before it, in order, with its failure class.
func checkCategory(t *testing.T, who string, rep *report.Report, cat category.Category, result report.Result, source string, attempts ...attempt) {
	t.Helper()
	rc := rep.Category(cat)
	if rc == nil {
		t.Errorf("%s: run %s (%s) has no %s category", who, rep.ID, rep.Trigger, cat)
		return
	}
	var got []attempt
	for _, a := range rc.Attempts {
		got = append(got, attempt{a.Source, a.Class})
	}
	if rc.Result != result || rc.Source != source || !slices.Equal(got, attempts) {
		b, _ := json.MarshalIndent(rc, "", "  ")
		t.Errorf("%s: run %s (%s), %s: got result %s from %q after %v, want %s from %q after %v\n%s",
			who, rep.ID, rep.Trigger, cat, rc.Result, rc.Source, got, result, source, attempts, b)
	}
}

// checkPlan checks the rule and the ordered sources of category cat in
// the plan of a local report (the server's copy leaves the steps out).
func checkPlan(t *testing.T, who string, rep *report.Report, rule string, cat category.Category, sources ...string) {
	t.Helper()
	steps, ok := rep.Plan.Categories[cat]
	if !ok {
		t.Errorf("%s: run %s: the plan has no %s", who, rep.ID, cat)
		return
	}
	got := make([]string, len(steps))
	for i, st := range steps {
		got[i] = st.Source.String()
	}
	if rep.Plan.Rule != rule || !slices.Equal(got, sources) {
		t.Errorf("%s: run %s: plan of %s is %v by rule %q, want %v by rule %q", who, rep.ID, cat, got, rep.Plan.Rule, sources, rule)
	}
}

// checkComponentsOnly checks that a run updated components and nothing
// else (a notify-components run), with version announced.
func checkComponentsOnly(t *testing.T, who string, rep *report.Report, version string) {
	t.Helper()
	var cats []string
	for _, c := range rep.Categories {
		cats = append(cats, string(c.Category))
	}
	if rep.Trigger != plan.NotifyComponents || rep.Announced["pattern"] != version || strings.Join(cats, ",") != string(category.Components) {
		t.Errorf("%s: notified run %s: trigger %s, announced %v, categories %v; want notify-components, pattern %s, components only",
			who, rep.ID, rep.Trigger, rep.Announced, cats, version)
	}
}

// checkFailedNoSource checks that category cat quit at once because its
// plan was empty.
func checkFailedNoSource(t *testing.T, who string, rep *report.Report, cat category.Category) {
	t.Helper()
	checkCategory(t, who, rep, cat, report.Failed, "")
	if rc := rep.Category(cat); rc != nil && !strings.Contains(rc.Error, "no source in the plan") {
		t.Errorf("%s: run %s, %s: error %q, want the empty plan's", who, rep.ID, cat, rc.Error)
	}
}
