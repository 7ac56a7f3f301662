package store_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// BenchmarkQueryEndpointsAddr measures a page of the console's endpoint
// list (50 by hostname, with the total) filtered by an address range,
// against the same page unfiltered ("none", the baseline of the same
// run), over 20,000 endpoints with an IPv4 and an IPv6 address each:
// cidr16 holds every endpoint, cidr24 256 of them, v6 256;
// count26groups counts the endpoints of 26 groups covering cidr16, as
// the preview of a range does for a page of groups.
//
//	CASCADE_TEST_POSTGRES=... go test -run '^$' -bench QueryEndpointsAddr -benchtime 20x ./internal/store/
func BenchmarkQueryEndpointsAddr(b *testing.B) {
	for _, be := range []struct {
		name string
		open func(testing.TB, func() time.Time) store.Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		b.Run(be.name, func(b *testing.B) {
			st := be.open(b, time.Now)
			ctx := context.Background()
			if _, err := st.CreateDomain(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
			const n = 20000
			for i := range n {
				if _, err := st.CreateEndpoint(ctx, store.Endpoint{Hostname: fmt.Sprint("pc-", i), Domain: "bench",
					CredentialHash: store.HashSecret(fmt.Sprint("cred-", i)), Addresses: []string{fmt.Sprintf("10.%d.%d.%d", i/65536, (i/256)%256, i%256), fmt.Sprintf("2001:db8::%x", i)}}); err != nil {
					b.Fatal(err)
				}
			}
			for _, q := range []struct {
				name string
				q    store.EndpointQuery
			}{
				{"none", store.EndpointQuery{Sort: "hostname", Limit: 50}},
				{"cidr16", store.EndpointQuery{Sort: "hostname", Limit: 50, AddrFrom: netip.MustParseAddr("10.0.0.0"), AddrTo: netip.MustParseAddr("10.0.255.255")}},
				{"cidr24", store.EndpointQuery{Sort: "hostname", Limit: 50, AddrFrom: netip.MustParseAddr("10.0.7.0"), AddrTo: netip.MustParseAddr("10.0.7.255")}},
				{"v6", store.EndpointQuery{Sort: "hostname", Limit: 50, AddrFrom: netip.MustParseAddr("2001:db8::100"), AddrTo: netip.MustParseAddr("2001:db8::1ff")}},
			} {
				b.Run(q.name, func(b *testing.B) {
					for b.Loop() {
						if _, _, err := st.QueryEndpoints(ctx, q.q); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			// The endpoint counts of a page of the preview of a range:
			// 10.0.0.0/16 (every endpoint) in 26 groups.
			var groups []store.AddrRange
			for k := 0; k < 256; k += 10 {
				groups = append(groups, store.AddrRange{From: netip.AddrFrom4([4]byte{10, 0, byte(k), 0}), To: netip.AddrFrom4([4]byte{10, 0, byte(min(k+9, 255)), 255})})
			}
			b.Run("count26groups", func(b *testing.B) {
				for b.Loop() {
					counts, err := st.CountEndpointsInRanges(ctx, groups)
					if err != nil {
						b.Fatal(err)
					}
					if total := sum(counts); total != n {
						b.Fatalf("counted %d endpoints, want %d", total, n)
					}
				}
			})
		})
	}
}

func sum(ns []int) int {
	t := 0
	for _, n := range ns {
		t += n
	}
	return t
}
