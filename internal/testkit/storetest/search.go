package storetest

import (
	"strings"

	"github.com/cascade-update/cascade/internal/store"
)

// testQueryEndpointsSearch: the text filter finds a substring of each
// field, in any case, whatever the index it reads (migration 0016) and
// after the fields change (a new hostname or addresses, a role with an
// agent id, a bulk insert); LIKE's wildcards and the search syntax's
// quotes are plain characters; a text spanning two fields matches
// nothing; revoked endpoints stay out.
func testQueryEndpointsSearch(e *env) {
	e.domain("d")
	k := e.endpoint("d", "Kiosk-0420.shop", "", "10.20.30.40", "fd00::42")
	o := e.endpoint("d", "office_7", "agent-Lobby", "192.168.7.7")
	q := e.endpoint("d", `quote"d`, "", "10.9.9.9")
	r := e.endpoint("d", "kiosk-0421", "")
	e.must(e.st.RevokeEndpoint(e.ctx, r.ID))
	e.must(e.st.CreateEndpoints(e.ctx, []store.Endpoint{{Hostname: "bulk-kiosk-9", Domain: "d", Role: store.RoleClient,
		Addresses: []string{"172.16.0.1"}, CredentialHash: store.HashSecret("credential of bulk-kiosk-9")}}))

	find := func(text string) []string {
		e.t.Helper()
		rows, total, err := e.st.QueryEndpoints(e.ctx, store.EndpointQuery{Text: text})
		e.must(err)
		if total != len(rows) {
			e.t.Fatalf("text %q: total %d for %d rows", text, total, len(rows))
		}
		out := []string{}
		for _, r := range rows {
			out = append(out, r.Hostname)
		}
		return out
	}
	check := func(text string, want ...string) {
		e.t.Helper()
		e.equal("text "+text, find(text), append([]string{}, want...))
	}
	check("kiosk", "Kiosk-0420.shop", "bulk-kiosk-9")
	check("KIOSK-042", "Kiosk-0420.shop")
	check(strings.ToUpper(k.ID[len(k.ID)-8:]), "Kiosk-0420.shop")
	check("ent-lob", "office_7")
	check("30.40", "Kiosk-0420.shop")
	check("fd00::4", "Kiosk-0420.shop")
	check("72.16.0", "bulk-kiosk-9")
	check("ce_7", "office_7")
	check("ce_", "office_7")
	check("e%7")
	check("offic_")
	check(`e"d`, `quote"d`)
	check("shop 10.20")
	check("shop ep_")
	check("0421")
	check(".s", "Kiosk-0420.shop")
	check("  ce_7  ", "office_7")

	host := "renamed-till"
	_, err := e.st.UpdateEndpointStatus(e.ctx, k.ID, store.StatusUpdate{Hostname: &host, Addresses: []string{"10.77.0.1"}})
	e.must(err)
	check("kiosk-0420")
	check("30.40")
	check("ed-til", "renamed-till")
	check("77.0.1", "renamed-till")
	_, err = e.st.SetEndpointRole(e.ctx, q.ID, store.RoleAgent, "frontdesk")
	e.must(err)
	check("ntdes", `quote"d`)
	_, err = e.st.SetEndpointRole(e.ctx, o.ID, store.RoleClient, "")
	e.must(err)
	check("lobby")
}
