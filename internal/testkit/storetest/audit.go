package storetest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cascade-update/cascade/internal/store"
)

// auditedChange is a change an administrator makes, and what shows it.
type auditedChange struct {
	name   string
	change func(ctx context.Context) error
	// state reads what the change changes.
	state func() any
}

// auditedChanges returns one change of each way the store writes (a
// transaction, a single statement), on a store holding a domain d, an
// endpoint, a component and an admin token.
func (e *env) auditedChanges() []auditedChange {
	e.domain("d")
	ep := e.endpoint("d", "pc-1", "", "10.0.0.1")
	_, err := e.st.RecordComponentSync(e.ctx, "pattern", "1.0")
	e.must(err)
	tok, err := e.st.CreateAdminToken(e.ctx, store.AdminToken{Name: "ci", Hash: e.secretHash()})
	e.must(err)
	read := func(v any, err error) any {
		e.t.Helper()
		if err != nil {
			return err.Error()
		}
		return v
	}
	return []auditedChange{
		{"create domain", func(ctx context.Context) error { _, err := e.st.CreateDomain(ctx, "d2"); return err },
			func() any { return read(e.st.ListDomains(e.ctx)) }},
		{"put policy", func(ctx context.Context) error {
			_, err := e.st.PutPolicy(ctx, "origin: https://o.example/\n", "alice", store.AnyVersion)
			return err
		}, func() any { return read(e.st.ListPolicies(e.ctx, 10)) }},
		{"approve program", func(ctx context.Context) error {
			_, err := e.st.ApproveProgram(ctx, store.ProgramApproval{Domain: "d", Program: "agent-core", Version: "14.0"})
			return err
		}, func() any { return read(e.st.ProgramApprovals(e.ctx, "d")) }},
		{"hold component", func(ctx context.Context) error { _, err := e.st.HoldComponent(ctx, "pattern", true); return err },
			func() any { return read(e.st.ListComponents(e.ctx)) }},
		{"deploy component", func(ctx context.Context) error {
			_, err := e.st.DeployComponent(ctx, "pattern", "0.9")
			return err
		}, func() any { return read(e.st.ListComponents(e.ctx)) }},
		{"set endpoint role", func(ctx context.Context) error {
			_, err := e.st.SetEndpointRole(ctx, ep.ID, store.RoleAgent, "ua-1")
			return err
		}, func() any { return read(e.st.Endpoint(e.ctx, ep.ID)) }},
		{"revoke endpoint", func(ctx context.Context) error { return e.st.RevokeEndpoint(ctx, ep.ID) },
			func() any { return read(e.st.Endpoint(e.ctx, ep.ID)) }},
		{"create enrollment token", func(ctx context.Context) error {
			_, err := e.st.CreateEnrollmentToken(ctx, store.EnrollmentToken{Domain: "d", Hash: e.secretHash(), MaxUses: 1})
			return err
		}, func() any { return read(e.st.ListEnrollmentTokens(e.ctx, "")) }},
		{"create admin token", func(ctx context.Context) error {
			_, err := e.st.CreateAdminToken(ctx, store.AdminToken{Name: "ops", Hash: e.secretHash()})
			return err
		}, func() any { return read(e.st.ListAdminTokens(e.ctx)) }},
		{"revoke admin token", func(ctx context.Context) error { return e.st.RevokeAdminToken(ctx, tok.ID) },
			func() any { return read(e.st.ListAdminTokens(e.ctx)) }},
		{"create account", func(ctx context.Context) error {
			_, err := e.st.CreateAccount(ctx, store.Account{Name: "carol", Role: store.AccountViewer, PasswordHash: "h"})
			return err
		}, func() any { return read(e.st.ListAccounts(e.ctx)) }},
		{"notify", func(ctx context.Context) error {
			_, err := e.st.CreateNotification(ctx, store.Notification{Domain: "d", Versions: json.RawMessage(`{"pattern":"1.0"}`)}, []string{ep.ID})
			return err
		}, func() any { return read(e.st.ListNotifications(e.ctx, 10)) }},
	}
}

// auditLog returns the whole audit log.
func (e *env) auditLog() []store.AuditEntry {
	e.t.Helper()
	all, err := e.st.ListAudit(e.ctx, store.AuditFilter{})
	e.must(err)
	return all
}

// testAuditAtomic: a change made with a context carrying an audit entry
// (store.WithAudit) and its entry are committed together: when the entry
// cannot be written (invalid: no actor) the change is not made, and a
// change that fails leaves no entry. The entry is written once however
// many changes the context makes.
func testAuditAtomic(e *env) {
	for _, c := range e.auditedChanges() {
		before, log := c.state(), e.auditLog()
		bad := store.NewAudit(store.AuditEntry{Kind: "x.change", Summary: c.name}) // no actor: invalid
		err := c.change(store.WithAudit(e.ctx, bad))
		e.is(err, store.ErrInvalid)
		e.equal(c.name+" whose audit entry could not be written: state", c.state(), before)
		e.equal(c.name+" whose audit entry could not be written: audit log", e.auditLog(), log)
		if _, ok := bad.Written(); ok {
			e.t.Fatalf("%s: the invalid entry says it was written", c.name)
		}

		a := store.NewAudit(store.AuditEntry{Actor: "account:alice", Kind: "x.change", Target: c.name, Summary: c.name})
		e.must(c.change(store.WithAudit(e.ctx, a)))
		if fmt.Sprint(c.state()) == fmt.Sprint(before) {
			e.t.Fatalf("%s changed nothing", c.name)
		}
		got, ok := a.Written()
		if !ok || got.Seq == 0 || !got.At.Equal(e.now()) {
			e.t.Fatalf("%s: written entry %+v, %t: want Seq and At set", c.name, got, ok)
		}
		e.equal(c.name+": audit log", e.auditLog(), append([]store.AuditEntry{got}, log...))
	}

	// A change that fails leaves no entry; the next change of the same
	// context writes it, and later ones add none.
	a := store.NewAudit(store.AuditEntry{Actor: "token:ci", Kind: "domain.create", Target: "d3"})
	ctx := store.WithAudit(e.ctx, a)
	log := e.auditLog()
	_, err := e.st.CreateDomain(ctx, "d") // exists
	e.is(err, store.ErrConflict)
	_, err = e.st.HoldComponent(ctx, "no-such-component", true)
	e.is(err, store.ErrNotFound)
	e.is(e.st.RevokeAdminToken(ctx, "adm_unknown"), store.ErrNotFound)
	e.equal("audit log after failed changes", e.auditLog(), log)
	if _, ok := a.Written(); ok {
		e.t.Fatal("failed changes wrote their audit entry")
	}
	_, err = e.st.CreateDomain(ctx, "d3")
	e.must(err)
	_, err = e.st.ApproveProgram(ctx, store.ProgramApproval{Domain: "d3", Program: "p", Version: "1"})
	e.must(err)
	got, _ := a.Written()
	e.equal("one entry for the context's changes", e.auditLog(), append([]store.AuditEntry{got}, log...))

	// After Close, changes made with the context record nothing.
	c := store.NewAudit(store.AuditEntry{Actor: "token:ci", Kind: "domain.create"})
	c.Close()
	_, err = e.st.CreateDomain(store.WithAudit(e.ctx, c), "d4")
	e.must(err)
	e.equal("audit log after a closed entry's change", e.auditLog(), append([]store.AuditEntry{got}, log...))
}

// testAuditAmend: AmendAudit replaces an entry's details.
func testAuditAmend(e *env) {
	en, err := e.st.AddAudit(e.ctx, store.AuditEntry{Actor: "cli", Kind: "admin-token.create", Summary: "admin token (ops)"})
	e.must(err)
	en.Target, en.Summary, en.Before, en.After = "adm_1", "admin token adm_1 (ops)", "", `{"id":"adm_1"}`
	e.must(e.st.AmendAudit(e.ctx, en))
	e.equal("amended entry", e.auditLog(), []store.AuditEntry{en})
	e.is(e.st.AmendAudit(e.ctx, store.AuditEntry{Seq: en.Seq + 1, Summary: "x"}), store.ErrNotFound)
}
