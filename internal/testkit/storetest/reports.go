package storetest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/store"
)

// report returns a full report of endpoint ep received at at (zero: let
// the store set it).
func report(ep string, at time.Time, result string) store.Report {
	run := start.Add(-time.Hour)
	return store.Report{
		EndpointID: ep, ReceivedAt: at, Trigger: "scheduled",
		Started: run.Truncate(time.Microsecond), Finished: run.Add(time.Minute).Truncate(time.Microsecond), Result: result,
		Categories: []store.CategoryReport{
			{Category: category.Components, Result: "updated", Source: "agent:ua-1",
				VersionsBefore: map[string]string{"pattern": "1.0"}, VersionsAfter: map[string]string{"pattern": "1.1"}, Bytes: 123456, FullBytes: 9876543},
			{Category: category.DomainSettings, Result: "failed"},
			{Category: category.Programs, Result: "up-to-date", Source: "server",
				VersionsBefore: map[string]string{}, VersionsAfter: map[string]string{}},
		},
		Document: json.RawMessage(fmt.Sprintf(`{"endpoint": %q, "result": %q}`, ep, result)),
	}
}

// noDoc returns reports without their Document.
func noDoc(rs ...store.Report) []store.Report {
	out := make([]store.Report, len(rs))
	for i, r := range rs {
		r.Document = nil
		out[i] = r
	}
	return out
}

func testReports(e *env) {
	e.domain("d")
	ep := e.endpoint("d", "pc", "")
	rs := []store.Report{report(ep.ID, time.Time{}, "ok"), {EndpointID: ep.ID, Trigger: "manual", Result: "failed"}}
	e.must(e.st.AddReports(e.ctx, rs))
	if rs[0].ID == "" || rs[1].ID == "" || rs[0].ID == rs[1].ID {
		e.t.Fatalf("report IDs %q and %q", rs[0].ID, rs[1].ID)
	}
	e.equal("received at", rs[0].ReceivedAt, e.now())
	for _, want := range rs {
		got, err := e.st.Report(e.ctx, want.ID)
		e.must(err)
		e.equal("stored report", got, want)
	}
	_, err := e.st.Report(e.ctx, "rpt_unknown")
	e.is(err, store.ErrNotFound)
	e.must(e.st.AddReports(e.ctx, nil))

	bad := []store.Report{
		{},
		{EndpointID: ep.ID, Document: json.RawMessage(`{`)},
		{EndpointID: ep.ID, Categories: []store.CategoryReport{{Category: "patterns"}}},
		{EndpointID: ep.ID, Categories: []store.CategoryReport{{Category: category.Programs}, {Category: category.Programs}}},
	}
	for i, b := range bad {
		err := e.st.AddReports(e.ctx, []store.Report{b})
		if err == nil {
			e.t.Fatalf("bad report %d was stored", i)
		}
		e.is(err, store.ErrInvalid)
	}
}

func testLastReport(e *env) {
	e.domain("d")
	ep := e.endpoint("d", "pc", "")
	_, err := e.st.LastReport(e.ctx, ep.ID)
	e.is(err, store.ErrNotFound)
	t0 := e.clock.Now()
	newer := []store.Report{report(ep.ID, t0.Add(time.Hour), "newer")}
	e.must(e.st.AddReports(e.ctx, newer))
	// An older report arriving later does not replace the last one.
	e.must(e.st.AddReports(e.ctx, []store.Report{report(ep.ID, t0, "older")}))
	got, err := e.st.LastReport(e.ctx, ep.ID)
	e.must(err)
	e.equal("last report", got, newer[0])

	// Within one batch the newest wins, and on a tie the later one.
	batch := []store.Report{
		report(ep.ID, t0.Add(3*time.Hour), "first"),
		report(ep.ID, t0.Add(3*time.Hour), "tie, later"),
		report(ep.ID, t0.Add(2*time.Hour), "earlier"),
	}
	e.must(e.st.AddReports(e.ctx, batch))
	got, err = e.st.LastReport(e.ctx, ep.ID)
	e.must(err)
	e.equal("last report of a batch", got, batch[1])
	// A report received at the same time as the last one replaces it.
	same := []store.Report{report(ep.ID, t0.Add(3*time.Hour), "same time, later call")}
	e.must(e.st.AddReports(e.ctx, same))
	got, err = e.st.LastReport(e.ctx, ep.ID)
	e.must(err)
	e.equal("last report after a tie across calls", got, same[0])
}

func testReportsAllOrNothing(e *env) {
	e.domain("d")
	ep := e.endpoint("d", "pc", "")
	batch := make([]store.Report, 600)
	for i := range batch {
		batch[i] = report(ep.ID, time.Time{}, "ok")
	}
	batch[550].EndpointID = "ep_unknown"
	e.is(e.st.AddReports(e.ctx, batch), store.ErrNotFound)
	got, err := e.st.ListReports(e.ctx, store.ReportFilter{})
	e.must(err)
	e.equal("reports stored by a failed batch", got, []store.Report{})
	_, err = e.st.LastReport(e.ctx, ep.ID)
	e.is(err, store.ErrNotFound)
}

func testListReports(e *env) {
	e.domain("d")
	a := e.endpoint("d", "a", "")
	b := e.endpoint("d", "b", "")
	t0 := e.now()
	all := make([]store.Report, 8)
	for i := range 4 {
		all[i] = report(a.ID, t0.Add(time.Duration(i)*time.Hour), fmt.Sprint("a", i))
		all[4+i] = report(b.ID, t0.Add(time.Duration(i)*time.Hour+time.Minute), fmt.Sprint("b", i))
	}
	e.must(e.st.AddReports(e.ctx, all))
	ra, rb := all[:4], all[4:]

	cases := []struct {
		f    store.ReportFilter
		want []store.Report
	}{
		{store.ReportFilter{EndpointID: a.ID}, noDoc(ra[3], ra[2], ra[1], ra[0])},
		{store.ReportFilter{EndpointID: a.ID, Limit: 2}, noDoc(ra[3], ra[2])},
		{store.ReportFilter{Since: t0.Add(time.Hour), Until: t0.Add(2*time.Hour + time.Minute)}, noDoc(ra[2], rb[1], ra[1])},
		{store.ReportFilter{Until: t0.Add(time.Minute)}, noDoc(ra[0])},
		{store.ReportFilter{Since: t0.Add(3 * time.Hour), Limit: 10}, noDoc(rb[3], ra[3])},
		{store.ReportFilter{EndpointID: "ep_unknown"}, []store.Report{}},
	}
	for i, c := range cases {
		got, err := e.st.ListReports(e.ctx, c.f)
		e.must(err)
		e.equal(fmt.Sprintf("case %d", i), got, c.want)
	}
}

func testLastReports(e *env) {
	e.domain("a")
	e.domain("b")
	ua := e.endpoint("a", "ua", "ua-1")
	c1 := e.endpoint("a", "c1", "")
	c2 := e.endpoint("b", "c2", "")
	e.endpoint("a", "silent", "")
	gone := e.endpoint("a", "gone", "")
	last := map[string]store.Report{}
	for i, ep := range []store.Endpoint{ua, c1, c2, gone} {
		rs := []store.Report{
			report(ep.ID, e.clock.Now(), "old"),
			report(ep.ID, e.clock.Now().Add(time.Duration(i+1)*time.Minute), "current "+ep.Hostname),
		}
		e.must(e.st.AddReports(e.ctx, rs))
		last[ep.ID] = rs[1]
	}
	e.must(e.st.RevokeEndpoint(e.ctx, gone.ID))

	byID := func(eps ...store.Endpoint) []store.Report {
		sortByID(eps)
		out := []store.Report{}
		for _, ep := range eps {
			out = append(out, last[ep.ID])
		}
		return out
	}
	cases := []struct {
		f    store.EndpointFilter
		want []store.Report
	}{
		{store.EndpointFilter{}, noDoc(byID(ua, c1, c2)...)},
		{store.EndpointFilter{WithDocument: true}, byID(ua, c1, c2)},
		{store.EndpointFilter{Domain: "a"}, noDoc(byID(ua, c1)...)},
		{store.EndpointFilter{Domain: "a", Role: store.RoleClient}, noDoc(byID(c1)...)},
		{store.EndpointFilter{Role: store.RoleAgent}, noDoc(byID(ua)...)},
	}
	for i, c := range cases {
		got, err := e.st.LastReports(e.ctx, c.f)
		e.must(err)
		e.equal(fmt.Sprintf("case %d %+v", i, c.f), got, c.want)
	}
	all := byID(ua, c1, c2)
	page, err := e.st.LastReports(e.ctx, store.EndpointFilter{Limit: 2})
	e.must(err)
	e.equal("first page", page, noDoc(all[:2]...))
	page, err = e.st.LastReports(e.ctx, store.EndpointFilter{Limit: 2, After: page[1].EndpointID})
	e.must(err)
	e.equal("second page", page, noDoc(all[2:]...))
}

func testPruneReports(e *env) {
	e.domain("d")
	a := e.endpoint("d", "a", "")
	b := e.endpoint("d", "b", "")
	t0 := e.now()
	var rs []store.Report
	for i := range 5 {
		rs = append(rs, report(a.ID, t0.Add(time.Duration(i)*time.Hour), fmt.Sprint(i)))
	}
	rs = append(rs, report(b.ID, t0, "b's only report"))
	e.must(e.st.AddReports(e.ctx, rs))

	n, err := e.st.PruneReports(e.ctx, t0.Add(2*time.Hour))
	e.must(err)
	e.equal("pruned", n, int64(2))
	got, err := e.st.ListReports(e.ctx, store.ReportFilter{})
	e.must(err)
	e.equal("reports kept", got, noDoc(rs[4], rs[3], rs[2], rs[5]))

	// Everything older than a year from now: only the last reports stay.
	n, err = e.st.PruneReports(e.ctx, t0.Add(365*24*time.Hour))
	e.must(err)
	e.equal("pruned", n, int64(2))
	got, err = e.st.ListReports(e.ctx, store.ReportFilter{})
	e.must(err)
	e.equal("reports kept", got, noDoc(rs[4], rs[5]))
	last, err := e.st.LastReport(e.ctx, a.ID)
	e.must(err)
	e.equal("last report after pruning", last, rs[4])
	_, err = e.st.Report(e.ctx, rs[0].ID)
	e.is(err, store.ErrNotFound)
}

// testReportsBulk stores batches larger than one multi-row statement.
func testReportsBulk(e *env) {
	e.domain("d")
	eps := make([]store.Endpoint, 50)
	for i := range eps {
		eps[i] = e.endpoint("d", fmt.Sprint("h", i), "")
	}
	t0 := e.now()
	batch := make([]store.Report, 0, 1500)
	for i := range 1500 {
		batch = append(batch, report(eps[i%len(eps)].ID, t0.Add(time.Duration(i)*time.Second), fmt.Sprint(i)))
	}
	e.must(e.st.AddReports(e.ctx, batch))
	got, err := e.st.ListReports(e.ctx, store.ReportFilter{})
	e.must(err)
	e.equal("reports stored", len(got), len(batch))
	lasts, err := e.st.LastReports(e.ctx, store.EndpointFilter{WithDocument: true})
	e.must(err)
	want := map[string]store.Report{}
	for _, r := range batch[len(batch)-len(eps):] {
		want[r.EndpointID] = r
	}
	e.equal("number of last reports", len(lasts), len(eps))
	for _, r := range lasts {
		e.equal("last report of "+r.EndpointID, r, want[r.EndpointID])
	}
	first, err := e.st.Report(e.ctx, batch[0].ID)
	e.must(err)
	e.equal("first report of the batch", first, batch[0])
}
