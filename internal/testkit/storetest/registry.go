package storetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/store"
)

func testDomains(e *env) {
	for _, bad := range []string{"", " x", "x ", "a\nb", strings.Repeat("d", 129)} {
		_, err := e.st.CreateDomain(e.ctx, bad)
		e.is(err, store.ErrInvalid)
	}
	b := e.domain("berlin")
	e.equal("created domain", b, store.Domain{Name: "berlin", Created: e.now()})
	_, err := e.st.CreateDomain(e.ctx, "berlin")
	e.conflict(err, "domain name", "berlin", nil)
	a := e.domain("amsterdam")
	got, err := e.st.Domain(e.ctx, "berlin")
	e.must(err)
	e.equal("domain", got, b)
	_, err = e.st.Domain(e.ctx, "paris")
	e.is(err, store.ErrNotFound)
	list, err := e.st.ListDomains(e.ctx)
	e.must(err)
	e.equal("domains", list, []store.Domain{a, b})

	e.endpoint("berlin", "h1", "")
	e.is(e.st.DeleteDomain(e.ctx, "berlin"), store.ErrConflict)
	_, err = e.st.CreateEnrollmentToken(e.ctx, store.EnrollmentToken{Hash: e.secretHash(), Domain: "amsterdam"})
	e.must(err)
	e.is(e.st.DeleteDomain(e.ctx, "amsterdam"), store.ErrConflict)

	e.domain("empty")
	_, err = e.st.ApproveProgram(e.ctx, store.ProgramApproval{Domain: "empty", Program: "agent", Version: "1.0"})
	e.must(err)
	e.must(e.st.DeleteDomain(e.ctx, "empty"))
	_, err = e.st.Domain(e.ctx, "empty")
	e.is(err, store.ErrNotFound)
	_, err = e.st.DomainSettings(e.ctx, "empty")
	e.is(err, store.ErrNotFound)
	approvals, err := e.st.ProgramApprovals(e.ctx, "empty")
	e.must(err)
	e.equal("approvals of a deleted domain", approvals, []store.ProgramApproval{})
	e.is(e.st.DeleteDomain(e.ctx, "empty"), store.ErrNotFound)
}

func testDomainSettings(e *env) {
	e.domain("d")
	created := e.now()
	got, err := e.st.DomainSettings(e.ctx, "d")
	e.must(err)
	e.equal("initial settings", got, store.DomainSettings{Domain: "d", Version: 0, Document: json.RawMessage("{}"), Updated: created})

	e.clock.Advance(time.Second)
	doc := []byte(`{"scan": {"interval": "1h"}, "b": 1}`)
	v1, err := e.st.PutDomainSettings(e.ctx, "d", doc, store.AnyVersion)
	e.must(err)
	e.equal("settings v1", v1, store.DomainSettings{Domain: "d", Version: 1, Document: doc, Updated: e.now()})
	got, err = e.st.DomainSettings(e.ctx, "d")
	e.must(err)
	e.equal("stored settings (verbatim)", got, v1)

	v2, err := e.st.PutDomainSettings(e.ctx, "d", []byte(`{"a":2}`), 1)
	e.must(err)
	e.equal("version after a conditional put", v2.Version, int64(2))
	_, err = e.st.PutDomainSettings(e.ctx, "d", []byte(`{"a":3}`), 1)
	e.is(err, store.ErrConflict)
	for _, bad := range []string{``, `{`, `[1]`, `"x"`} {
		_, err = e.st.PutDomainSettings(e.ctx, "d", []byte(bad), store.AnyVersion)
		e.is(err, store.ErrInvalid)
	}
	_, err = e.st.PutDomainSettings(e.ctx, "nowhere", []byte(`{}`), store.AnyVersion)
	e.is(err, store.ErrNotFound)
	got, err = e.st.DomainSettings(e.ctx, "d")
	e.must(err)
	e.equal("settings after refused puts", got, v2)

	// Concurrent unconditional puts each add one version.
	errs := parallel(8, func(i int) error {
		_, err := e.st.PutDomainSettings(e.ctx, "d", fmt.Appendf(nil, `{"writer":%d}`, i), store.AnyVersion)
		return err
	})
	for _, err := range errs {
		e.must(err)
	}
	got, err = e.st.DomainSettings(e.ctx, "d")
	e.must(err)
	e.equal("version after 8 concurrent puts", got.Version, int64(10))
}

func testEndpoints(e *env) {
	e.domain("d")
	cred := e.secretHash()
	in := store.Endpoint{Hostname: "pc-1", Domain: "d", CredentialHash: cred,
		Addresses: []string{"10.0.0.1", "2001:DB8::1"},
		Installed: store.Installed{category.Components: {"pattern": "1.2"}}}
	ep, err := e.st.CreateEndpoint(e.ctx, in)
	e.must(err)
	want := in
	want.ID, want.Role, want.Enrolled, want.LastSeen = ep.ID, store.RoleClient, e.now(), e.now()
	want.Addresses = []string{"10.0.0.1", "2001:db8::1"}
	e.equal("created endpoint", ep, want)
	got, err := e.st.Endpoint(e.ctx, ep.ID)
	e.must(err)
	e.equal("stored endpoint", got, ep)
	got, err = e.st.AuthenticateEndpoint(e.ctx, cred)
	e.must(err)
	e.equal("authenticated endpoint", got, ep)
	_, err = e.st.AuthenticateEndpoint(e.ctx, store.HashSecret("unknown"))
	e.is(err, store.ErrNotFound)
	_, err = e.st.Endpoint(e.ctx, "ep_unknown")
	e.is(err, store.ErrNotFound)

	agent := e.endpoint("d", "ua", "ua-1", "10.1.0.1")
	e.equal("agent", [2]string{string(agent.Role), agent.AgentID}, [2]string{"agent", "ua-1"})
	_, err = e.st.CreateEndpoint(e.ctx, store.Endpoint{Hostname: "ua2", Domain: "d", CredentialHash: e.secretHash(),
		Role: store.RoleAgent, AgentID: "ua-1"})
	e.conflict(err, "agent id", "ua-1", &agent)

	newCred := e.secretHash()
	e.must(e.st.RotateEndpointCredential(e.ctx, ep.ID, newCred))
	_, err = e.st.AuthenticateEndpoint(e.ctx, cred)
	e.is(err, store.ErrNotFound)
	got, err = e.st.AuthenticateEndpoint(e.ctx, newCred)
	e.must(err)
	e.equal("endpoint after rotation", got.ID, ep.ID)
	e.is(e.st.RotateEndpointCredential(e.ctx, ep.ID, agent.CredentialHash), store.ErrConflict)
	e.is(e.st.RotateEndpointCredential(e.ctx, "ep_unknown", e.secretHash()), store.ErrNotFound)
}

func testEndpointsInvalid(e *env) {
	e.domain("d")
	taken := e.endpoint("d", "taken", "")
	bad := []store.Endpoint{
		{Domain: "d", CredentialHash: e.secretHash()},
		{Hostname: "x", Domain: "d"},
		{Hostname: "x", Domain: "d", CredentialHash: e.secretHash(), Addresses: []string{"10.0.0.300"}},
		{Hostname: "x", Domain: "d", CredentialHash: e.secretHash(), Role: store.RoleAgent},
		{Hostname: "x", Domain: "d", CredentialHash: e.secretHash(), Role: store.RoleAgent, AgentID: "bad id"},
		{Hostname: "x", Domain: "d", CredentialHash: e.secretHash(), Role: store.RoleClient, AgentID: "ua-1"},
		{Hostname: "x", Domain: "d", CredentialHash: e.secretHash(), Role: "relay"},
	}
	for i, b := range bad {
		_, err := e.st.CreateEndpoint(e.ctx, b)
		if err == nil {
			e.t.Fatalf("bad endpoint %d was created", i)
		}
		e.is(err, store.ErrInvalid)
	}
	_, err := e.st.CreateEndpoint(e.ctx, store.Endpoint{Hostname: "x", Domain: "nowhere", CredentialHash: e.secretHash()})
	e.is(err, store.ErrNotFound)
	_, err = e.st.CreateEndpoint(e.ctx, store.Endpoint{Hostname: "x", Domain: "d", CredentialHash: taken.CredentialHash})
	e.conflict(err, "endpoint credential", "", nil)
	eps, err := e.st.ListEndpoints(e.ctx, store.EndpointFilter{IncludeRevoked: true})
	e.must(err)
	e.equal("endpoints after refused creations", eps, []store.Endpoint{taken})
}

func testEndpointStatus(e *env) {
	e.domain("d")
	ep := e.endpoint("d", "pc", "", "10.0.0.1")
	e.clock.Advance(time.Minute)
	got, err := e.st.UpdateEndpointStatus(e.ctx, ep.ID, store.StatusUpdate{})
	e.must(err)
	want := ep
	want.LastSeen = e.now()
	e.equal("after a bare heartbeat", got, want)

	host, url := "pc.corp", "https://pc.corp:8444/"
	seen := e.clock.Now().Add(-time.Second)
	inst := store.Installed{category.Components: {"engine": "9"}, category.Programs: {"agent": "2.0"}}
	got, err = e.st.UpdateEndpointStatus(e.ctx, ep.ID, store.StatusUpdate{Seen: seen, Hostname: &host,
		Addresses: []string{"::ffff:10.0.0.2", "10.0.0.3"}, Installed: inst, AgentURL: &url})
	e.must(err)
	want.LastSeen, want.Hostname, want.Installed, want.AgentURL = seen.Truncate(time.Microsecond), host, inst, url
	want.Addresses = []string{"::ffff:10.0.0.2", "10.0.0.3"}
	e.equal("after a full status update", got, want)
	stored, err := e.st.Endpoint(e.ctx, ep.ID)
	e.must(err)
	e.equal("stored after a full status update", stored, want)

	empty := ""
	got, err = e.st.UpdateEndpointStatus(e.ctx, ep.ID, store.StatusUpdate{Addresses: []string{}, AgentURL: &empty})
	e.must(err)
	e.equal("addresses cleared", got.Addresses, []string{})
	e.equal("agent URL cleared", got.AgentURL, "")
	e.equal("installed kept", got.Installed, inst)

	_, err = e.st.UpdateEndpointStatus(e.ctx, ep.ID, store.StatusUpdate{Addresses: []string{"host.example"}})
	e.is(err, store.ErrInvalid)
	_, err = e.st.UpdateEndpointStatus(e.ctx, "ep_unknown", store.StatusUpdate{})
	e.is(err, store.ErrNotFound)
}

func testEndpointRoles(e *env) {
	e.domain("d")
	a := e.endpoint("d", "a", "")
	b := e.endpoint("d", "b", "")
	got, err := e.st.SetEndpointRole(e.ctx, a.ID, store.RoleAgent, "ua-1")
	e.must(err)
	e.equal("role and agent id", [2]string{string(got.Role), got.AgentID}, [2]string{"agent", "ua-1"})
	_, err = e.st.SetEndpointRole(e.ctx, b.ID, store.RoleAgent, "ua-1")
	e.conflict(err, "agent id", "ua-1", &got)
	_, err = e.st.SetEndpointRole(e.ctx, b.ID, store.RoleAgent, "")
	e.is(err, store.ErrInvalid)
	_, err = e.st.SetEndpointRole(e.ctx, b.ID, store.RoleClient, "ua-2")
	e.is(err, store.ErrInvalid)
	_, err = e.st.SetEndpointRole(e.ctx, "ep_unknown", store.RoleAgent, "ua-9")
	e.is(err, store.ErrNotFound)

	url := "https://a.corp/"
	_, err = e.st.UpdateEndpointStatus(e.ctx, a.ID, store.StatusUpdate{AgentURL: &url})
	e.must(err)
	_, err = e.st.SetEndpointRole(e.ctx, b.ID, store.RoleAgent, "ua-0")
	e.must(err)
	dir, err := e.st.AgentDirectory(e.ctx)
	e.must(err)
	e.equal("agent directory", dir, []store.AgentEntry{
		{AgentID: "ua-0", EndpointID: b.ID}, {AgentID: "ua-1", URL: url, EndpointID: a.ID}})

	got, err = e.st.SetEndpointRole(e.ctx, a.ID, store.RoleClient, "")
	e.must(err)
	e.equal("role and agent id of a former agent", [2]string{string(got.Role), got.AgentID}, [2]string{"client", ""})
	_, err = e.st.SetEndpointRole(e.ctx, b.ID, store.RoleAgent, "ua-1")
	e.must(err)
	dir, err = e.st.AgentDirectory(e.ctx)
	e.must(err)
	e.equal("agent directory after the changes", dir, []store.AgentEntry{{AgentID: "ua-1", EndpointID: b.ID}})
}

func testEndpointRevoke(e *env) {
	e.domain("d")
	agent := e.endpoint("d", "ua", "ua-1")
	revokedAt := e.now()
	e.must(e.st.RevokeEndpoint(e.ctx, agent.ID))
	e.clock.Advance(time.Hour)
	e.must(e.st.RevokeEndpoint(e.ctx, agent.ID))
	e.is(e.st.RevokeEndpoint(e.ctx, "ep_unknown"), store.ErrNotFound)

	_, err := e.st.AuthenticateEndpoint(e.ctx, agent.CredentialHash)
	e.is(err, store.ErrRevoked)
	_, err = e.st.UpdateEndpointStatus(e.ctx, agent.ID, store.StatusUpdate{})
	e.is(err, store.ErrRevoked)
	_, err = e.st.SetEndpointRole(e.ctx, agent.ID, store.RoleClient, "")
	e.is(err, store.ErrRevoked)
	e.is(e.st.RotateEndpointCredential(e.ctx, agent.ID, e.secretHash()), store.ErrRevoked)
	got, err := e.st.Endpoint(e.ctx, agent.ID)
	e.must(err)
	e.equal("revocation time", got.Revoked, revokedAt)
	dir, err := e.st.AgentDirectory(e.ctx)
	e.must(err)
	e.equal("agent directory without the revoked agent", dir, []store.AgentEntry{})

	// The machine re-enrolls and takes its agent id back.
	again := e.endpoint("d", "ua-reenrolled", "ua-1")
	dir, err = e.st.AgentDirectory(e.ctx)
	e.must(err)
	e.equal("agent directory", dir, []store.AgentEntry{{AgentID: "ua-1", EndpointID: again.ID}})
}

func testListEndpoints(e *env) {
	e.domain("a")
	e.domain("b")
	var all []store.Endpoint
	for i := range 7 {
		domain, agentID := "a", ""
		if i%2 == 1 {
			domain = "b"
		}
		if i%3 == 0 {
			agentID = fmt.Sprintf("ua-%d", i)
		}
		all = append(all, e.endpoint(domain, fmt.Sprintf("h%d", i), agentID))
	}
	e.must(e.st.RevokeEndpoint(e.ctx, all[6].ID))
	revoked, err := e.st.Endpoint(e.ctx, all[6].ID)
	e.must(err)
	all[6] = revoked
	sortByID(all)

	pick := func(keep func(store.Endpoint) bool) []store.Endpoint {
		out := []store.Endpoint{}
		for _, ep := range all {
			if keep(ep) {
				out = append(out, ep)
			}
		}
		return out
	}
	live := func(ep store.Endpoint) bool { return ep.Revoked.IsZero() }
	cases := []struct {
		f    store.EndpointFilter
		want []store.Endpoint
	}{
		{store.EndpointFilter{}, pick(live)},
		{store.EndpointFilter{IncludeRevoked: true}, all},
		{store.EndpointFilter{Domain: "a"}, pick(func(ep store.Endpoint) bool { return live(ep) && ep.Domain == "a" })},
		{store.EndpointFilter{Role: store.RoleAgent, IncludeRevoked: true},
			pick(func(ep store.Endpoint) bool { return ep.Role == store.RoleAgent })},
		{store.EndpointFilter{Domain: "b", Role: store.RoleClient},
			pick(func(ep store.Endpoint) bool { return live(ep) && ep.Domain == "b" && ep.Role == store.RoleClient })},
		{store.EndpointFilter{Domain: "c"}, []store.Endpoint{}},
	}
	for i, c := range cases {
		got, err := e.st.ListEndpoints(e.ctx, c.f)
		e.must(err)
		e.equal(fmt.Sprintf("case %d %+v", i, c.f), got, c.want)
	}

	e.pageEndpoints(all)
}

// pageEndpoints checks that paging by two visits every endpoint (want, in
// ID order) once.
func (e *env) pageEndpoints(want []store.Endpoint) {
	e.t.Helper()
	var paged []store.Endpoint
	after := ""
	for {
		page, err := e.st.ListEndpoints(e.ctx, store.EndpointFilter{IncludeRevoked: true, After: after, Limit: 2})
		e.must(err)
		if len(page) > 2 {
			e.t.Fatalf("page of %d with limit 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].ID
	}
	e.equal("paged endpoints", paged, want)
}

func sortByID(eps []store.Endpoint) {
	for i := 1; i < len(eps); i++ {
		for j := i; j > 0 && eps[j].ID < eps[j-1].ID; j-- {
			eps[j], eps[j-1] = eps[j-1], eps[j]
		}
	}
}
