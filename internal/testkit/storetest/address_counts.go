package storetest

import (
	"net/netip"

	"github.com/cascade-update/cascade/internal/store"
)

// testCountEndpointsInRanges: each range counts the endpoints (not
// revoked) with an address in it, once however many they have there,
// IPv4-mapped addresses as IPv4 and IPv6 ranges only IPv6 addresses;
// ranges out of order or mixing families are refused.
func testCountEndpointsInRanges(e *env) {
	e.domain("d")
	e.endpoint("d", "a", "", "10.1.0.1", "10.1.0.2", "2001:db8:1::5")
	e.endpoint("d", "b", "", "10.1.0.200", "10.3.0.1")
	e.endpoint("d", "mapped", "", "::ffff:10.1.0.7")
	e.endpoint("d", "v6", "", "2001:db8:2::1")
	r := e.endpoint("d", "revoked", "", "10.1.0.3")
	e.must(e.st.RevokeEndpoint(e.ctx, r.ID))

	rng := func(from, to string) store.AddrRange {
		return store.AddrRange{From: netip.MustParseAddr(from), To: netip.MustParseAddr(to)}
	}
	got, err := e.st.CountEndpointsInRanges(e.ctx, []store.AddrRange{
		rng("10.0.0.0", "10.1.0.0"),     // none
		rng("10.1.0.1", "10.1.0.7"),     // a (twice), mapped; revoked left out
		rng("10.1.0.8", "10.2.255.255"), // b
		rng("10.3.0.1", "10.3.0.1"),     // b again
		rng("::", "::ffff:ffff:ffff"),   // IPv6 only: not the mapped address
		rng("2001:db8::", "2001:db8:1::ffff"),
		rng("2001:db8:2::1", "2001:db8:2::1"),
		rng("11.0.0.0", "255.255.255.255"), // the families are apart
	})
	e.must(err)
	e.equal("counts", got, []int{0, 2, 1, 1, 0, 1, 1, 0})
	got, err = e.st.CountEndpointsInRanges(e.ctx, nil)
	e.must(err)
	e.equal("no ranges", got, []int{})
	for _, bad := range [][]store.AddrRange{
		{rng("10.1.0.0", "10.1.0.9"), rng("10.1.0.5", "10.1.0.20")}, // overlap
		{rng("10.2.0.0", "10.2.0.9"), rng("10.1.0.0", "10.1.0.9")},  // out of order
		{rng("10.0.0.1", "2001:db8::1")},
		{rng("10.0.0.9", "10.0.0.1")},
	} {
		_, err := e.st.CountEndpointsInRanges(e.ctx, bad)
		e.is(err, store.ErrInvalid)
	}
}
