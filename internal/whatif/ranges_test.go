package whatif

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
)

func ranges(t testing.TB, ss ...string) []policy.Range {
	t.Helper()
	var out []policy.Range
	for _, s := range ss {
		r, err := policy.ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// spanView is a span as the table tests name it: its addresses and the
// first source of components under each policy.
func spanView(s Span) string {
	first := func(e Explained) string {
		if st := e.Categories[comp]; len(st) > 0 {
			return st[0].Source
		}
		return "-"
	}
	mark := ""
	if len(s.Changed) > 0 {
		mark = " changed"
	}
	return fmt.Sprintf("%s %s>%s%s", s.Range, first(s.Current), first(s.Edited), mark)
}

func TestCompareRanges(t *testing.T) {
	cur := pol(t, nil, "10.1.0.0/16 agent:a", "10.1.2.0/24 agent:b", "2001:db8:10::/48 agent:a")
	ed := pol(t, nil, "10.1.0.0-10.1.127.255 agent:a", "10.1.128.0/17 https://m.example/", "2001:db8:10:8000::/49 agent:c")
	client := Target{Role: plan.RoleClient}
	tests := []struct {
		name  string
		in    []string
		start string
		max   int
		want  []string
		next  string
	}{
		{"a single address", []string{"10.1.5.3"}, "", 0, []string{"10.1.5.3 agent:a>agent:a"}, ""},
		{"a single address that changes", []string{"10.1.200.1"}, "", 0, []string{"10.1.200.1 agent:a>https://m.example/ changed"}, ""},
		{"no entry covers the range", []string{"192.168.0.0/16"}, "", 0, []string{"192.168.0.0-192.168.255.255 server>server"}, ""},
		{"boundaries of both lists", []string{"10.0.255.250-10.1.200.0"}, "", 0, []string{
			"10.0.255.250-10.0.255.255 server>server",
			// 10.1.2.0/24 matches entries 1 and 2 in force: agent:b
			// second, which the draft drops.
			"10.1.0.0-10.1.1.255 agent:a>agent:a",
			"10.1.2.0-10.1.2.255 agent:a>agent:a changed",
			"10.1.3.0-10.1.127.255 agent:a>agent:a",
			"10.1.128.0-10.1.200.0 agent:a>https://m.example/ changed",
		}, ""},
		{"IPv6 prefix", []string{"2001:db8::/32"}, "", 0, []string{
			"2001:db8::-2001:db8:f:ffff:ffff:ffff:ffff:ffff server>server",
			"2001:db8:10::-2001:db8:10:7fff:ffff:ffff:ffff:ffff agent:a>server changed",
			"2001:db8:10:8000::-2001:db8:10:ffff:ffff:ffff:ffff:ffff agent:a>agent:c changed",
			"2001:db8:11::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff server>server",
		}, ""},
		{"several addresses, IPv4 first, adjacent ones joined", []string{"2001:db8:10::1", "10.1.0.6", "10.1.0.5", "10.9.9.9", "10.1.0.5"}, "", 0, []string{
			"10.1.0.5-10.1.0.6 agent:a>agent:a",
			"10.9.9.9 server>server",
			"2001:db8:10::1 agent:a>server changed",
		}, ""},
		{"overlapping ranges are one set", []string{"10.1.0.0/24", "10.1.0.128-10.1.2.10"}, "", 0, []string{
			"10.1.0.0-10.1.1.255 agent:a>agent:a",
			"10.1.2.0-10.1.2.10 agent:a>agent:a changed",
		}, ""},
		{"capped: next is where to go on", []string{"10.0.0.0/8"}, "", 2, []string{
			"10.0.0.0-10.0.255.255 server>server",
			"10.1.0.0-10.1.1.255 agent:a>agent:a",
		}, "10.1.2.0"},
		{"going on from next", []string{"10.0.0.0/8"}, "10.1.2.0", 2, []string{
			"10.1.2.0-10.1.2.255 agent:a>agent:a changed",
			"10.1.3.0-10.1.127.255 agent:a>agent:a",
		}, "10.1.128.0"},
		{"start in IPv6 skips IPv4", []string{"10.1.0.0/16", "2001:db8:10::/48"}, "2001:db8:10:8000::", 0, []string{
			"2001:db8:10:8000::-2001:db8:10:ffff:ffff:ffff:ffff:ffff agent:a>agent:c changed",
		}, ""},
		{"the whole IPv4 space", []string{"0.0.0.0/0"}, "", 0, []string{
			"0.0.0.0-10.0.255.255 server>server",
			"10.1.0.0-10.1.1.255 agent:a>agent:a",
			"10.1.2.0-10.1.2.255 agent:a>agent:a changed",
			"10.1.3.0-10.1.127.255 agent:a>agent:a",
			"10.1.128.0-10.1.255.255 agent:a>https://m.example/ changed",
			"10.2.0.0-255.255.255.255 server>server",
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var start netip.Addr
			if tt.start != "" {
				start = netip.MustParseAddr(tt.start)
			}
			spans, next := CompareRanges(cur, ed, ranges(t, tt.in...), client, plan.Scheduled, start, cmpOr(tt.max, 100))
			var got []string
			for _, s := range spans {
				got = append(got, spanView(s))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("spans\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if fmt.Sprint(next) != cmpOr(tt.next, "invalid IP") {
				t.Errorf("next = %v, want %q", next, tt.next)
			}
		})
	}
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a == zero {
		return b
	}
	return a
}

// TestCompareRangesJoinsSamePlans: where the list does not decide the
// plan (clients.source standard under the draft), the intervals between
// boundaries have the same plans and are one span.
func TestCompareRangesJoinsSamePlans(t *testing.T) {
	cur := pol(t, nil, "10.1.0.0/16 agent:a", "10.1.2.0/24 agent:b")
	ed := pol(t, func(p *policy.Policy) { p.Clients.Source = policy.Standard }, "10.1.0.0/16 agent:a", "10.1.2.0/24 agent:b")
	spans, _ := CompareRanges(ed, ed, ranges(t, "0.0.0.0/0"), Target{Role: plan.RoleClient}, plan.Scheduled, netip.Addr{}, 10)
	if len(spans) != 1 || spans[0].Range.String() != "0.0.0.0-255.255.255.255" || len(spans[0].Changed) != 0 {
		t.Fatalf("standard under both: %v", spans)
	}
	spans, _ = CompareRanges(cur, ed, ranges(t, "0.0.0.0/0"), Target{Role: plan.RoleClient}, plan.Scheduled, netip.Addr{}, 10)
	var got []string
	for _, s := range spans {
		got = append(got, spanView(s))
	}
	want := []string{"0.0.0.0-10.0.255.255 server>server", "10.1.0.0-10.1.1.255 agent:a>server changed",
		"10.1.2.0-10.1.2.255 agent:a>server changed", "10.1.3.0-10.1.255.255 agent:a>server changed", "10.2.0.0-255.255.255.255 server>server"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spans %q, want %q", got, want)
	}
}

// TestCompareRangesNoPolicyInForce compares against an empty plan, as
// Compare does.
func TestCompareRangesNoPolicyInForce(t *testing.T) {
	ed := pol(t, nil, "10.0.0.0/8 agent:a")
	spans, _ := CompareRanges(nil, ed, ranges(t, "9.255.255.255-10.0.0.1"), Target{Role: plan.RoleClient}, plan.Scheduled, netip.Addr{}, 10)
	if len(spans) != 2 || spanView(spans[0]) != "9.255.255.255 ->server changed" || spanView(spans[1]) != "10.0.0.0-10.0.0.1 ->agent:a changed" {
		t.Fatalf("spans: %v", spans)
	}
}

// TestCompareRangesEqualsCompare checks, over random policies and sets,
// that every address of every span has the plans (sources and entries)
// Compare gives the span, that the spans cover the set exactly, and that
// adjacent spans differ.
func TestCompareRangesEqualsCompare(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	sources := []string{"agent:a", "agent:b", "https://m1.example/x", "https://au.vendor.example/"}
	random := func() *policy.Policy {
		var entries []string
		seen := map[string]bool{}
		for n := r.IntN(12); n > 0; n-- {
			lo := r.IntN(40)
			e := fmt.Sprintf("10.0.0.%d-10.0.0.%d %s", lo, lo+r.IntN(40-lo), sources[r.IntN(len(sources))])
			if r.IntN(4) == 0 {
				e = fmt.Sprintf("2001:db8::%x/126 %s", r.IntN(40)&^3, sources[r.IntN(len(sources))])
			}
			if !seen[e] {
				seen[e] = true
				entries = append(entries, e)
			}
		}
		return pol(t, func(p *policy.Policy) { p.FallbackToServer.Components = r.IntN(2) == 0 }, entries...)
	}
	key := func(e Explained) map[string][]string {
		out := map[string][]string{"rule": {e.Rule}, "notes": e.Notes}
		for c, steps := range e.Categories {
			for _, s := range steps {
				out[string(c)] = append(out[string(c)], fmt.Sprintf("%s#%d", s.Source, s.Entry))
			}
		}
		return out
	}
	for i := 0; i < 300; i++ {
		cur, ed := random(), random()
		set := ranges(t, fmt.Sprintf("10.0.0.%d-10.0.0.%d", r.IntN(20), 20+r.IntN(25)), fmt.Sprintf("2001:db8::%x-2001:db8::%x", r.IntN(20), 20+r.IntN(30)))
		role := Target{Role: plan.RoleClient}
		if r.IntN(3) == 0 {
			role = Target{Role: plan.RoleAgent, AgentID: "a"}
		}
		spans, next := CompareRanges(cur, ed, set, role, plan.Scheduled, netip.Addr{}, 1000)
		if next.IsValid() {
			t.Fatalf("next = %v for a small set", next)
		}
		var covered []netip.Addr
		for si, s := range spans {
			var first map[string][]string
			for a := s.Range.From; ; a = a.Next() {
				covered = append(covered, a)
				c := Compare(cur, ed, Target{Role: role.Role, AgentID: role.AgentID, Addresses: []netip.Addr{a}}, plan.Scheduled)
				k := map[string][]string{}
				for n, v := range key(c.Current) {
					k["cur "+n] = v
				}
				for n, v := range key(c.Edited) {
					k["ed "+n] = v
				}
				if first == nil {
					first = k
					if !reflect.DeepEqual(c, s.Comparison) {
						t.Fatalf("case %d span %s: comparison at its first address differs", i, s.Range)
					}
				} else if !reflect.DeepEqual(k, first) {
					t.Fatalf("case %d span %s: %s has other plans:\n%v\nspan: %v", i, s.Range, a, k, first)
				}
				if a == s.Range.To {
					break
				}
			}
			if si > 0 && spans[si-1].Range.To.Next() == s.Range.From && samePlans(spans[si-1].Comparison, s.Comparison) {
				t.Fatalf("case %d: adjacent spans %s and %s have the same plans", i, spans[si-1].Range, s.Range)
			}
		}
		var want []netip.Addr
		for _, rg := range set {
			for a := rg.From; ; a = a.Next() {
				want = append(want, a)
				if a == rg.To {
					break
				}
			}
		}
		if !reflect.DeepEqual(covered, want) {
			t.Fatalf("case %d: spans cover %v, want %v", i, covered, want)
		}
	}
}

// BenchmarkCompareRanges previews 10.0.0.0/8 under two lists of 1024
// entries, the largest a policy document holds (4096 spans here; at most 4097 intervals
// between boundaries):
//
//	go test -run '^$' -bench CompareRanges ./internal/whatif/
func BenchmarkCompareRanges(b *testing.B) {
	list := func(shift int) *policy.Policy {
		var entries []string
		for i := range 1024 {
			entries = append(entries, fmt.Sprintf("10.%d.%d.0/24 agent:a%d", i/64, (i%64)*4+shift, i%7))
		}
		return pol(b, nil, entries...)
	}
	cur, ed := list(0), list(2)
	set := ranges(b, "10.0.0.0/8")
	for b.Loop() {
		n := 0
		for start := (netip.Addr{}); ; {
			spans, next := CompareRanges(cur, ed, set, Target{Role: plan.RoleClient}, plan.Scheduled, start, 10000)
			n += len(spans)
			if !next.IsValid() {
				break
			}
			start = next
		}
		if n != 4096 {
			b.Fatalf("%d spans", n)
		}
	}
}
