package storetest

import (
	"fmt"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

func testAccounts(e *env) {
	a, err := e.st.CreateAccount(e.ctx, store.Account{Name: "alice", Role: store.AccountAdmin, PasswordHash: "h1"})
	e.must(err)
	if a.ID == "" || !a.Created.Equal(e.now()) || !a.Disabled.IsZero() {
		e.t.Fatalf("created account %+v: want an id, Created now, not disabled", a)
	}
	_, err = e.st.CreateAccount(e.ctx, store.Account{Name: "alice", Role: store.AccountViewer, PasswordHash: "h2"})
	e.is(err, store.ErrConflict)
	for _, bad := range []store.Account{
		{Name: "", Role: store.AccountAdmin, PasswordHash: "h"},
		{Name: "has space", Role: store.AccountAdmin, PasswordHash: "h"},
		{Name: "bob", Role: "root", PasswordHash: "h"},
		{Name: "bob", Role: store.AccountViewer},
	} {
		_, err := e.st.CreateAccount(e.ctx, bad)
		e.is(err, store.ErrInvalid)
	}
	v, err := e.st.CreateAccount(e.ctx, store.Account{Name: "bob", Role: store.AccountViewer, PasswordHash: "h3"})
	e.must(err)
	got, err := e.st.AccountByName(e.ctx, "alice")
	e.must(err)
	e.equal("account by name", got, a)
	_, err = e.st.AccountByName(e.ctx, "carol")
	e.is(err, store.ErrNotFound)
	all, err := e.st.ListAccounts(e.ctx)
	e.must(err)
	e.equal("accounts", all, []store.Account{a, v})
}

func testSessions(e *env) {
	a, err := e.st.CreateAccount(e.ctx, store.Account{Name: "alice", Role: store.AccountAdmin, PasswordHash: "h"})
	e.must(err)
	const idle, absolute = 30 * time.Minute, 8 * time.Hour
	_, err = e.st.CreateSession(e.ctx, store.Session{AccountID: a.ID})
	e.is(err, store.ErrInvalid)
	_, err = e.st.CreateSession(e.ctx, store.Session{Hash: e.secretHash(), AccountID: "acct_nobody"})
	e.is(err, store.ErrNotFound)

	h := e.secretHash()
	s, err := e.st.CreateSession(e.ctx, store.Session{Hash: h, AccountID: a.ID})
	e.must(err)
	if !s.Created.Equal(e.now()) || !s.LastSeen.Equal(e.now()) {
		e.t.Fatalf("session %+v: want Created and LastSeen now", s)
	}
	a.LastSignIn = s.Created // a session is a sign-in
	_, err = e.st.CreateSession(e.ctx, store.Session{Hash: h, AccountID: a.ID})
	e.is(err, store.ErrConflict)

	// Used within the idle time, for longer than the idle time in total.
	for range 3 {
		e.clock.Advance(20 * time.Minute)
		got, acct, err := e.st.TouchSession(e.ctx, h, idle, absolute)
		e.must(err)
		e.equal("account of session", acct, a)
		if !got.LastSeen.Equal(e.now()) || !got.Created.Equal(s.Created) {
			e.t.Fatalf("touched session %+v: want LastSeen now, Created kept", got)
		}
	}
	// Idle too long: expired and deleted.
	e.clock.Advance(idle)
	_, _, err = e.st.TouchSession(e.ctx, h, idle, absolute)
	e.is(err, store.ErrExpired)
	_, _, err = e.st.TouchSession(e.ctx, h, idle, absolute)
	e.is(err, store.ErrNotFound)

	// Absolute expiry, however busy.
	h2 := e.secretHash()
	_, err = e.st.CreateSession(e.ctx, store.Session{Hash: h2, AccountID: a.ID})
	e.must(err)
	for elapsed := time.Duration(0); elapsed+20*time.Minute < absolute; elapsed += 20 * time.Minute {
		e.clock.Advance(20 * time.Minute)
		_, _, err = e.st.TouchSession(e.ctx, h2, idle, absolute)
		e.must(err)
	}
	e.clock.Advance(20 * time.Minute)
	_, _, err = e.st.TouchSession(e.ctx, h2, idle, absolute)
	e.is(err, store.ErrExpired)

	// Sign-out.
	h3 := e.secretHash()
	_, err = e.st.CreateSession(e.ctx, store.Session{Hash: h3, AccountID: a.ID})
	e.must(err)
	e.must(e.st.DeleteSession(e.ctx, h3))
	_, _, err = e.st.TouchSession(e.ctx, h3, idle, absolute)
	e.is(err, store.ErrNotFound)
	e.must(e.st.DeleteSession(e.ctx, h3))
}

func testAudit(e *env) {
	_, err := e.st.AddAudit(e.ctx, store.AuditEntry{Kind: "policy.set"})
	e.is(err, store.ErrInvalid)
	_, err = e.st.AddAudit(e.ctx, store.AuditEntry{Actor: "account:alice"})
	e.is(err, store.ErrInvalid)

	var all []store.AuditEntry
	t0 := e.now()
	for i, x := range []struct{ actor, kind string }{
		{"account:alice", "policy.set"}, {"token:ci", "component.hold"}, {"account:alice", "component.release"},
		{"cli", "account.create"}, {"token:ci", "policy.set"},
	} {
		en, err := e.st.AddAudit(e.ctx, store.AuditEntry{Actor: x.actor, Kind: x.kind, Target: fmt.Sprint("t", i),
			Summary: "s", Before: map[bool]string{true: `{"v":1}`}[i == 0], After: `{"v":2}`})
		e.must(err)
		if !en.At.Equal(e.now()) || (len(all) > 0 && en.Seq <= all[0].Seq) {
			e.t.Fatalf("entry %+v: want At now and Seq increasing", en)
		}
		all = append([]store.AuditEntry{en}, all...) // newest first
		e.clock.Advance(time.Minute)
	}
	got, err := e.st.ListAudit(e.ctx, store.AuditFilter{})
	e.must(err)
	e.equal("audit log", got, all)
	got, err = e.st.ListAudit(e.ctx, store.AuditFilter{Actor: "token:ci"})
	e.must(err)
	e.equal("by actor", got, []store.AuditEntry{all[0], all[3]})
	got, err = e.st.ListAudit(e.ctx, store.AuditFilter{Kind: "component."})
	e.must(err)
	e.equal("by kind prefix", got, []store.AuditEntry{all[2], all[3]})
	got, err = e.st.ListAudit(e.ctx, store.AuditFilter{Kind: "policy.set"})
	e.must(err)
	e.equal("by kind", got, []store.AuditEntry{all[0], all[4]})
	got, err = e.st.ListAudit(e.ctx, store.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)})
	e.must(err)
	e.equal("by time", got, []store.AuditEntry{all[2], all[3]})
	// Paging.
	var paged []store.AuditEntry
	for before := int64(0); ; {
		page, err := e.st.ListAudit(e.ctx, store.AuditFilter{Before: before, Limit: 2})
		e.must(err)
		paged = append(paged, page...)
		if len(page) < 2 {
			break
		}
		before = page[len(page)-1].Seq
	}
	e.equal("paged", paged, all)
}

func testQueryEndpoints(e *env) {
	e.domain("d")
	b := e.endpoint("d", "bravo", "", "10.0.0.2")
	a := e.endpoint("d", "Alwyn", "", "10.0.0.1")
	e.clock.Advance(48 * time.Hour)
	c := e.endpoint("d", "charlie", "agent-1", "192.168.1.9")
	r := e.endpoint("d", "revoked", "")
	e.must(e.st.RevokeEndpoint(e.ctx, r.ID))
	reps := []store.Report{report(b.ID, e.now(), "failed"), report(c.ID, e.now(), "success")}
	e.must(e.st.AddReports(e.ctx, reps))
	ok := reps[1]

	names := func(q store.EndpointQuery) ([]string, int) {
		e.t.Helper()
		rows, total, err := e.st.QueryEndpoints(e.ctx, q)
		e.must(err)
		out := []string{}
		for _, r := range rows {
			out = append(out, r.Hostname)
		}
		return out, total
	}
	check := func(what string, q store.EndpointQuery, want []string, wantTotal int) {
		e.t.Helper()
		got, total := names(q)
		e.equal(what, got, want)
		if total != wantTotal {
			e.t.Fatalf("%s: total %d, want %d", what, total, wantTotal)
		}
	}
	check("all by hostname", store.EndpointQuery{Sort: "hostname"}, []string{"Alwyn", "bravo", "charlie"}, 3)
	check("desc", store.EndpointQuery{Sort: "hostname", Desc: true}, []string{"charlie", "bravo", "Alwyn"}, 3)
	check("page", store.EndpointQuery{Offset: 1, Limit: 1}, []string{"bravo"}, 3)
	check("role", store.EndpointQuery{Role: store.RoleAgent}, []string{"charlie"}, 1)
	check("text address", store.EndpointQuery{Text: "192.168"}, []string{"charlie"}, 1)
	// "ALW" cannot occur in an endpoint id (lower-case base32hex, 0-9 and a-v), which the text search also reads.
	check("text hostname, any case", store.EndpointQuery{Text: "ALW"}, []string{"Alwyn"}, 1)
	check("text with a LIKE wildcard", store.EndpointQuery{Text: "%"}, []string{}, 0)
	check("failing", store.EndpointQuery{Failing: true}, []string{"bravo"}, 1)
	check("no report", store.EndpointQuery{NoReport: true}, []string{"Alwyn"}, 1)
	check("not seen", store.EndpointQuery{SeenBefore: e.now().Add(-time.Hour)}, []string{"Alwyn", "bravo"}, 2)
	check("ids", store.EndpointQuery{IDs: []string{a.ID, c.ID}, Sort: "last_seen", Desc: true}, []string{"charlie", "Alwyn"}, 2)
	check("no ids", store.EndpointQuery{IDs: []string{}}, []string{}, 0)
	rows, _, err := e.st.QueryEndpoints(e.ctx, store.EndpointQuery{Role: store.RoleAgent})
	e.must(err)
	if rows[0].LastReport.ID != ok.ID || rows[0].LastReport.Result != "success" || len(rows[0].LastReport.Categories) != len(ok.Categories) {
		e.t.Fatalf("last report of charlie: %+v, want %+v", rows[0].LastReport, ok)
	}
	_, _, err = e.st.QueryEndpoints(e.ctx, store.EndpointQuery{Sort: "password"})
	e.is(err, store.ErrInvalid)
}
