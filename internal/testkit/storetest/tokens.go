package storetest

import (
	"errors"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

func testAdminTokens(e *env) {
	h := e.secretHash()
	_, err := e.st.CreateAdminToken(e.ctx, store.AdminToken{Name: " ", Hash: h})
	e.is(err, store.ErrInvalid)
	_, err = e.st.CreateAdminToken(e.ctx, store.AdminToken{Name: "ci"})
	e.is(err, store.ErrInvalid)

	a, err := e.st.CreateAdminToken(e.ctx, store.AdminToken{Name: "alice", Hash: h})
	e.must(err)
	if a.ID == "" {
		e.t.Fatal("CreateAdminToken set no ID")
	}
	e.equal("created token", a, store.AdminToken{ID: a.ID, Name: "alice", Hash: h, Created: e.now()})
	_, err = e.st.CreateAdminToken(e.ctx, store.AdminToken{Name: "copy", Hash: h})
	e.is(err, store.ErrConflict)

	e.clock.Advance(time.Minute)
	b, err := e.st.CreateAdminToken(e.ctx, store.AdminToken{Name: "bob", Hash: e.secretHash()})
	e.must(err)

	got, err := e.st.AuthenticateAdmin(e.ctx, h)
	e.must(err)
	e.equal("authenticated token", got, a)
	_, err = e.st.AuthenticateAdmin(e.ctx, store.HashSecret("unknown"))
	e.is(err, store.ErrNotFound)

	e.clock.Advance(time.Minute)
	revokedAt := e.now()
	e.must(e.st.RevokeAdminToken(e.ctx, a.ID))
	_, err = e.st.AuthenticateAdmin(e.ctx, h)
	e.is(err, store.ErrRevoked)
	e.clock.Advance(time.Minute)
	e.must(e.st.RevokeAdminToken(e.ctx, a.ID))
	e.is(e.st.RevokeAdminToken(e.ctx, "adm_unknown"), store.ErrNotFound)

	list, err := e.st.ListAdminTokens(e.ctx)
	e.must(err)
	a.Revoked = revokedAt
	e.equal("admin tokens", list, []store.AdminToken{a, b})
	if _, err := e.st.AuthenticateAdmin(e.ctx, b.Hash); err != nil {
		e.t.Fatalf("revoking one token affected another: %v", err)
	}
}

func testEnrollmentTokens(e *env) {
	e.domain("d")
	e.domain("other")

	single, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d", MaxUses: 1})
	e.must(err)
	e.equal("created token", single, store.EnrollmentToken{ID: single.ID, Hash: single.Hash, Domain: "d", MaxUses: 1, Created: e.now()})
	_, err = e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: single.Hash, Domain: "other"})
	e.is(err, store.ErrConflict)

	got, err := e.st.RedeemEnrollmentToken(e.ctx, single.Hash)
	e.must(err)
	single.Uses = 1
	e.equal("redeemed token", got, single)
	_, err = e.st.RedeemEnrollmentToken(e.ctx, single.Hash)
	e.is(err, store.ErrExhausted)
	_, err = e.st.RedeemEnrollmentToken(e.ctx, store.HashSecret("unknown"))
	e.is(err, store.ErrNotFound)

	e.clock.Advance(time.Second)
	unlimited, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "other"})
	e.must(err)
	for i := 1; i <= 5; i++ {
		got, err := e.st.RedeemEnrollmentToken(e.ctx, unlimited.Hash)
		e.must(err)
		e.equal("uses of an unlimited token", got.Uses, i)
	}

	e.clock.Advance(time.Second)
	expiring, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{
		Hash: e.secretHash(), Domain: "d", MaxUses: 10, Expires: e.clock.Now().Add(time.Hour)})
	e.must(err)
	e.equal("expiry", expiring.Expires, e.now().Add(time.Hour))
	e.clock.Advance(time.Hour - time.Microsecond)
	_, err = e.st.RedeemEnrollmentToken(e.ctx, expiring.Hash)
	e.must(err)
	e.clock.Advance(time.Microsecond)
	_, err = e.st.RedeemEnrollmentToken(e.ctx, expiring.Hash)
	e.is(err, store.ErrExpired)

	e.must(e.st.RevokeEnrollmentToken(e.ctx, unlimited.ID))
	_, err = e.st.RedeemEnrollmentToken(e.ctx, unlimited.Hash)
	e.is(err, store.ErrRevoked)
	e.is(e.st.RevokeEnrollmentToken(e.ctx, "enr_unknown"), store.ErrNotFound)

	e.clock.Advance(time.Second)
	agents, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d", Agents: true})
	e.must(err)
	e.equal("created agents token", agents, store.EnrollmentToken{ID: agents.ID, Hash: agents.Hash, Domain: "d", Created: e.now(), Agents: true})

	list, err := e.st.ListEnrollmentTokens(e.ctx, "d")
	e.must(err)
	expiring.Uses = 1
	e.equal("tokens of d", list, []store.EnrollmentToken{single, expiring, agents})
	all, err := e.st.ListEnrollmentTokens(e.ctx, "")
	e.must(err)
	e.equal("number of tokens", len(all), 4)
}

func testEnrollmentTokensInvalid(e *env) {
	_, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "nowhere"})
	e.is(err, store.ErrNotFound)
	e.domain("d")
	_, err = e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d", Expires: e.clock.Now()})
	e.is(err, store.ErrInvalid)
	_, err = e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d", MaxUses: -1})
	e.is(err, store.ErrInvalid)
	_, err = e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Domain: "d"})
	e.is(err, store.ErrInvalid)
	list, err := e.st.ListEnrollmentTokens(e.ctx, "")
	e.must(err)
	e.equal("tokens after refused creations", list, []store.EnrollmentToken{})
}

// testRedeemConcurrent: of concurrent redeems of a token with n uses
// left, exactly n win.
func testRedeemConcurrent(e *env) {
	e.domain("d")
	for _, maxUses := range []int{1, 3} {
		tok, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d", MaxUses: maxUses})
		e.must(err)
		errs := parallel(16, func(int) error {
			_, err := e.st.RedeemEnrollmentToken(e.ctx, tok.Hash)
			return err
		})
		ok, exhausted := e.count(errs, store.ErrExhausted)
		if ok != maxUses || exhausted != 16-maxUses {
			e.t.Fatalf("max uses %d: %d redeems won, %d were refused as exhausted", maxUses, ok, exhausted)
		}
	}
	tok, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d", MaxUses: 1})
	e.must(err)
	errs := parallel(8, func(i int) error {
		_, err := e.st.Enroll(e.ctx, tok.Hash, store.Endpoint{
			Hostname: "h", CredentialHash: store.HashSecret(strings.Repeat("x", i+1))})
		return err
	})
	if ok, _ := e.count(errs, store.ErrExhausted); ok != 1 {
		e.t.Fatalf("%d concurrent enrollments with one single-use token succeeded", ok)
	}
	eps, err := e.st.ListEndpoints(e.ctx, store.EndpointFilter{})
	e.must(err)
	e.equal("endpoints enrolled", len(eps), 1)
}

func testEnroll(e *env) {
	e.domain("d")
	tok, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d", MaxUses: 1})
	e.must(err)
	existing := e.endpoint("d", "existing", "")

	// A failing endpoint creation leaves the token unused.
	_, err = e.st.Enroll(e.ctx, tok.Hash, store.Endpoint{Hostname: "dup", CredentialHash: existing.CredentialHash})
	e.is(err, store.ErrConflict)
	_, err = e.st.Enroll(e.ctx, tok.Hash, store.Endpoint{Hostname: "bad", CredentialHash: e.secretHash(), Addresses: []string{"nope"}})
	e.is(err, store.ErrInvalid)
	list, err := e.st.ListEnrollmentTokens(e.ctx, "d")
	e.must(err)
	e.equal("uses after failed enrollments", list[0].Uses, 0)

	cred := e.secretHash()
	ep, err := e.st.Enroll(e.ctx, tok.Hash, store.Endpoint{Hostname: "new", Domain: "ignored", CredentialHash: cred,
		Addresses: []string{"10.0.0.1"}})
	e.must(err)
	e.equal("enrolled endpoint's domain", ep.Domain, "d")
	got, err := e.st.AuthenticateEndpoint(e.ctx, cred)
	e.must(err)
	e.equal("enrolled endpoint", got, ep)
	_, err = e.st.Enroll(e.ctx, tok.Hash, store.Endpoint{Hostname: "late", CredentialHash: e.secretHash()})
	e.is(err, store.ErrExhausted)
	_, err = e.st.Enroll(e.ctx, store.HashSecret("unknown"), store.Endpoint{Hostname: "x", CredentialHash: e.secretHash()})
	if !errors.Is(err, store.ErrNotFound) {
		e.t.Fatalf("enroll with an unknown token: %v", err)
	}
}

// testEnrollAgents: only a token with Agents enrolls an update agent; a
// refused agent uses nothing up and creates nothing.
func testEnrollAgents(e *env) {
	e.domain("d")
	clients, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d", MaxUses: 1})
	e.must(err)
	e.clock.Advance(time.Second) // list order: clients, agents
	agents, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d", MaxUses: 2, Agents: true})
	e.must(err)
	agent := func(host, id string) store.Endpoint {
		return store.Endpoint{Hostname: host, Role: store.RoleAgent, AgentID: id, CredentialHash: e.secretHash()}
	}
	uses := func(what string, want ...int) {
		e.t.Helper()
		list, err := e.st.ListEnrollmentTokens(e.ctx, "d")
		e.must(err)
		got := make([]int, len(list))
		for i, t := range list {
			got[i] = t.Uses
		}
		e.equal(what, got, want)
	}

	_, err = e.st.Enroll(e.ctx, clients.Hash, agent("rogue", "ua-1"))
	e.is(err, store.ErrForbiddenRole)
	uses("uses after a refused agent", 0, 0)
	eps, err := e.st.ListEndpoints(e.ctx, store.EndpointFilter{})
	e.must(err)
	e.equal("endpoints after a refused agent", len(eps), 0)

	// The refused enrollment neither used the token nor took the agent id.
	c, err := e.st.Enroll(e.ctx, clients.Hash, store.Endpoint{Hostname: "pc", CredentialHash: e.secretHash()})
	e.must(err)
	e.equal("client's role", c.Role, store.RoleClient)
	a, err := e.st.Enroll(e.ctx, agents.Hash, agent("ua", "ua-1"))
	e.must(err)
	e.equal("agent's role and id", []string{string(a.Role), a.AgentID}, []string{"agent", "ua-1"})
	// A token that may enroll agents enrolls clients as well.
	_, err = e.st.Enroll(e.ctx, agents.Hash, store.Endpoint{Hostname: "pc2", CredentialHash: e.secretHash()})
	e.must(err)
	uses("uses after three enrollments", 1, 2)

	// The token's validity is checked first: used up, not forbidden.
	_, err = e.st.Enroll(e.ctx, clients.Hash, agent("late", "ua-2"))
	e.is(err, store.ErrExhausted)
	revoked, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d"})
	e.must(err)
	e.must(e.st.RevokeEnrollmentToken(e.ctx, revoked.ID))
	_, err = e.st.Enroll(e.ctx, revoked.Hash, agent("late", "ua-2"))
	e.is(err, store.ErrRevoked)
}

// testEnrollAgentConflict: enrolling an update agent with an agent id
// another endpoint holds is a *store.ConflictError naming the agent id and
// its holder, and does not use the token.
func testEnrollAgentConflict(e *env) {
	e.domain("d")
	tok, err := e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "d", Agents: true})
	e.must(err)
	first, err := e.st.Enroll(e.ctx, tok.Hash, store.Endpoint{Hostname: "pc-4711", Role: store.RoleAgent, AgentID: "ua-1",
		CredentialHash: e.secretHash()})
	e.must(err)
	_, err = e.st.Enroll(e.ctx, tok.Hash, store.Endpoint{Hostname: "pc-4712", Role: store.RoleAgent, AgentID: "ua-1",
		CredentialHash: e.secretHash()})
	e.conflict(err, "agent id", "ua-1", &first)
	toks, err := e.st.ListEnrollmentTokens(e.ctx, "d")
	e.must(err)
	e.equal("uses after a refused enrollment", toks[0].Uses, 1)
}
