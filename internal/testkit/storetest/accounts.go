package storetest

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// testQueryEndpointsAddresses: the address-range filter matches an
// endpoint by any of its addresses, IPv4-mapped addresses as IPv4, IPv6
// ranges only IPv6 addresses, and follows address changes.
func testQueryEndpointsAddresses(e *env) {
	e.domain("d")
	e.endpoint("d", "a", "", "10.1.0.1", "2001:db8:1::5")
	b := e.endpoint("d", "b", "", "10.1.0.200")
	c := e.endpoint("d", "c", "", "10.2.0.1")
	e.endpoint("d", "mapped", "", "::ffff:10.1.0.7")
	e.endpoint("d", "v6", "", "2001:db8:2::1")
	ch := e.endpoint("d", "changing", "", "192.168.7.7")
	r := e.endpoint("d", "revoked", "", "10.1.0.2")
	e.must(e.st.RevokeEndpoint(e.ctx, r.ID))

	hosts := func(from, to string) []string {
		e.t.Helper()
		rows, total, err := e.st.QueryEndpoints(e.ctx, store.EndpointQuery{AddrFrom: netip.MustParseAddr(from), AddrTo: netip.MustParseAddr(to)})
		e.must(err)
		out := []string{}
		for _, r := range rows {
			out = append(out, r.Hostname)
		}
		if total != len(out) {
			e.t.Fatalf("%s-%s: total %d for %d rows", from, to, total, len(out))
		}
		return out
	}
	for _, c := range []struct {
		from, to string
		want     []string
	}{
		{"10.1.0.0", "10.1.0.255", []string{"a", "b", "mapped"}}, // a CIDR /24 as a range
		{"10.1.0.1", "10.1.0.1", []string{"a"}},                  // a single address
		{"10.1.0.2", "10.1.0.199", []string{"mapped"}},
		{"10.1.0.200", "10.2.0.1", []string{"b", "c"}}, // both ends inclusive
		{"0.0.0.0", "255.255.255.255", []string{"a", "b", "c", "changing", "mapped"}},
		{"2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", []string{"a", "v6"}}, // an IPv6 prefix /32
		{"2001:db8:2::", "2001:db8:2::ffff", []string{"v6"}},
		// An IPv6 range reaching into the mapped block matches IPv6
		// addresses only, as the policy's ranges do.
		{"::", "::ffff:ffff:ffff", []string{}},
		{"11.0.0.0", "11.255.255.255", []string{}},
	} {
		e.equal(c.from+"-"+c.to, hosts(c.from, c.to), c.want)
	}
	// Hostnames order and other filters still apply.
	rows, total, err := e.st.QueryEndpoints(e.ctx, store.EndpointQuery{AddrFrom: netip.MustParseAddr("10.0.0.0"),
		AddrTo: netip.MustParseAddr("10.255.255.255"), IDs: []string{b.ID, c.ID, ch.ID}, Sort: "hostname", Desc: true, Limit: 1})
	e.must(err)
	if total != 2 || len(rows) != 1 || rows[0].Hostname != "c" {
		e.t.Fatalf("range with text: %d %+v", total, rows)
	}
	// New addresses replace the old ones in the filter.
	_, err = e.st.UpdateEndpointStatus(e.ctx, ch.ID, store.StatusUpdate{Addresses: []string{"10.1.0.9", "10.1.0.9"}})
	e.must(err)
	e.equal("after the address change", hosts("10.1.0.0", "10.1.0.255"), []string{"a", "b", "changing", "mapped"})
	e.equal("old address", hosts("192.168.0.0", "192.168.255.255"), []string{})
	// A heartbeat without addresses keeps them.
	_, err = e.st.UpdateEndpointStatus(e.ctx, ch.ID, store.StatusUpdate{})
	e.must(err)
	e.equal("after a heartbeat", hosts("10.1.0.9", "10.1.0.9"), []string{"changing"})
	// Enrolled with a token, the addresses are indexed too.
	th := e.secretHash()
	_, err = e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Domain: "d", Hash: th, MaxUses: 1})
	e.must(err)
	_, err = e.st.Enroll(e.ctx, th, store.Endpoint{Hostname: "enrolled", Addresses: []string{"172.16.0.1"}, CredentialHash: e.secretHash()})
	e.must(err)
	e.equal("enrolled", hosts("172.16.0.0", "172.16.255.255"), []string{"enrolled"})
	for _, bad := range []store.EndpointQuery{
		{AddrFrom: netip.MustParseAddr("10.0.0.1")},
		{AddrFrom: netip.MustParseAddr("10.0.0.1"), AddrTo: netip.MustParseAddr("2001:db8::1")},
		{AddrFrom: netip.MustParseAddr("10.0.0.9"), AddrTo: netip.MustParseAddr("10.0.0.1")},
	} {
		_, _, err := e.st.QueryEndpoints(e.ctx, bad)
		e.is(err, store.ErrInvalid)
	}
}

// testAccountChanges: disable and enable (sessions end at once), role
// changes, password changes (other sessions end), the last admin kept.
func testAccountChanges(e *env) {
	const idle, absolute = time.Hour, 12 * time.Hour
	alice, err := e.st.CreateAccount(e.ctx, store.Account{Name: "alice", Role: store.AccountAdmin, PasswordHash: "h1"})
	e.must(err)
	_, err = e.st.CreateAccount(e.ctx, store.Account{Name: "bob", Role: store.AccountViewer, PasswordHash: "h2"})
	e.must(err)
	session := func(a store.Account) store.Hash {
		e.t.Helper()
		h := e.secretHash()
		_, err := e.st.CreateSession(e.ctx, store.Session{Hash: h, AccountID: a.ID})
		e.must(err)
		return h
	}
	got, err := e.st.AccountByName(e.ctx, "bob")
	e.must(err)
	if !got.LastSignIn.IsZero() {
		e.t.Fatalf("bob never signed in, but LastSignIn is %v", got.LastSignIn)
	}
	e.clock.Advance(time.Minute)
	bobSession := session(got)
	got, err = e.st.AccountByName(e.ctx, "bob")
	e.must(err)
	if !got.LastSignIn.Equal(e.now()) {
		e.t.Fatalf("bob's LastSignIn %v, want %v", got.LastSignIn, e.now())
	}

	// The only admin can be neither disabled nor made a viewer.
	_, err = e.st.SetAccountDisabled(e.ctx, "alice", true)
	e.is(err, store.ErrConflict)
	_, err = e.st.SetAccountRole(e.ctx, "alice", store.AccountViewer)
	e.is(err, store.ErrConflict)
	_, err = e.st.SetAccountRole(e.ctx, "alice", "root")
	e.is(err, store.ErrInvalid)
	for _, err := range []error{
		func() error { _, err := e.st.SetAccountDisabled(e.ctx, "nobody", true); return err }(),
		func() error { _, err := e.st.SetAccountRole(e.ctx, "nobody", store.AccountAdmin); return err }(),
		func() error { _, err := e.st.SetAccountPassword(e.ctx, "nobody", "h", store.Hash{}); return err }(),
	} {
		e.is(err, store.ErrNotFound)
	}

	// Disabling ends the sessions at once; enabling does not bring them back.
	e.clock.Advance(time.Minute)
	b, err := e.st.SetAccountDisabled(e.ctx, "bob", true)
	e.must(err)
	if !b.Disabled.Equal(e.now()) {
		e.t.Fatalf("disabled bob: %+v", b)
	}
	_, _, err = e.st.TouchSession(e.ctx, bobSession, idle, absolute)
	e.is(err, store.ErrNotFound)
	_, err = e.st.CreateSession(e.ctx, store.Session{Hash: e.secretHash(), AccountID: b.ID})
	e.is(err, store.ErrRevoked)
	e.clock.Advance(time.Minute)
	again, err := e.st.SetAccountDisabled(e.ctx, "bob", true)
	e.must(err)
	e.equal("disabled twice keeps the first time", again.Disabled, b.Disabled)
	b, err = e.st.SetAccountDisabled(e.ctx, "bob", false)
	e.must(err)
	if !b.Disabled.IsZero() {
		e.t.Fatalf("enabled bob: %+v", b)
	}
	_, _, err = e.st.TouchSession(e.ctx, bobSession, idle, absolute)
	e.is(err, store.ErrNotFound)

	// With a second admin, the first may be disabled; not then the second.
	b, err = e.st.SetAccountRole(e.ctx, "bob", store.AccountAdmin)
	e.must(err)
	if b.Role != store.AccountAdmin {
		e.t.Fatalf("bob's role: %+v", b)
	}
	_, err = e.st.SetAccountDisabled(e.ctx, "alice", true)
	e.must(err)
	_, err = e.st.SetAccountDisabled(e.ctx, "bob", true)
	e.is(err, store.ErrConflict)
	_, err = e.st.SetAccountRole(e.ctx, "bob", store.AccountViewer)
	e.is(err, store.ErrConflict)
	// A disabled admin does not count: alice may be made a viewer.
	a, err := e.st.SetAccountRole(e.ctx, "alice", store.AccountViewer)
	e.must(err)
	if a.Role != store.AccountViewer || a.Disabled.IsZero() {
		e.t.Fatalf("alice: %+v", a)
	}
	_, err = e.st.SetAccountDisabled(e.ctx, "alice", false)
	e.must(err)

	// A new password ends every other session of the account.
	keep, other := session(alice), session(alice)
	_, err = e.st.SetAccountPassword(e.ctx, "alice", "", keep)
	e.is(err, store.ErrInvalid)
	a, err = e.st.SetAccountPassword(e.ctx, "alice", "h9", keep)
	e.must(err)
	if a.PasswordHash != "h9" {
		e.t.Fatalf("alice's password hash %q", a.PasswordHash)
	}
	_, _, err = e.st.TouchSession(e.ctx, keep, idle, absolute)
	e.must(err)
	_, _, err = e.st.TouchSession(e.ctx, other, idle, absolute)
	e.is(err, store.ErrNotFound)
	all, err := e.st.ListAccounts(e.ctx)
	e.must(err)
	if len(all) != 2 || all[0].PasswordHash != "h9" || all[1].Role != store.AccountAdmin {
		e.t.Fatalf("accounts: %+v", all)
	}
}

// testLastAdminConcurrent: two admins disabling each other at once leave
// one enabled.
func testLastAdminConcurrent(e *env) {
	for i := range 2 {
		_, err := e.st.CreateAccount(e.ctx, store.Account{Name: fmt.Sprintf("admin-%d", i), Role: store.AccountAdmin, PasswordHash: "h"})
		e.must(err)
	}
	errs := parallel(2, func(i int) error {
		if i == 0 {
			_, err := e.st.SetAccountDisabled(e.ctx, "admin-0", true)
			return err
		}
		_, err := e.st.SetAccountRole(e.ctx, "admin-1", store.AccountViewer)
		return err
	})
	ok, conflicts := e.count(errs, store.ErrConflict)
	if ok != 1 || conflicts != 1 {
		e.t.Fatalf("two concurrent last-admin changes: %d succeeded, %d refused (%v); want 1 and 1", ok, conflicts, errs)
	}
}
