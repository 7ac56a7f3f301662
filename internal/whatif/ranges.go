package whatif

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
)

// A preview of a set of addresses (ranges, CIDRs, prefixes, single
// addresses) splits the set at the boundaries of both policies' entries
// (boundaries, as the Planner does): between two consecutive boundaries
// every address matches the same entries of each policy, so it has the
// same plans. Adjacent intervals with the same plans under both policies
// (the same sources from the same entries, rule and notes: an entry whose
// source an earlier one already gives changes nothing, for example) are
// one span.

// Span is a group of consecutive addresses of a previewed set that have
// the same plan under the policy in force and the same plan under the
// edited one. The comparison is computed for the span's first address:
// the reasons name it; the sources are those of every address of the
// span.
type Span struct {
	Range policy.Range
	Comparison
}

// MaxIntervals bounds the intervals between boundaries one call of
// CompareRanges examines: each costs a plan under each policy, which
// reads every entry. Two policies of 1024 entries each split a /8 into
// at most 4097; the rest is left to a further call.
const MaxIntervals = 2048

// CompareRanges returns the spans of the set rs (any order, overlaps
// allowed, families mixed) under current (nil: no policy in force) and
// edited, for an endpoint of role tgt.Role (and agent id tgt.AgentID;
// tgt.Addresses is ignored) and trigger t: IPv4 first, then IPv6, each in
// address order. Addresses below start (when valid) are left out. At
// most maxSpans spans are returned, and at most MaxIntervals intervals
// examined: when the set goes on, next is the first address not covered,
// from which a further call continues; otherwise next is the zero Addr.
func CompareRanges(current, edited *policy.Policy, rs []policy.Range, tgt Target, t plan.Trigger, start netip.Addr, maxSpans int) (spans []Span, next netip.Addr) {
	v4, v6 := boundaries(current, edited)
	examined := 0
	for _, r := range mergeRanges(rs, start) {
		bs := v6
		if r.From.Is4() {
			bs = v4
		}
		// i is the first boundary above r.From.
		i, found := slices.BinarySearchFunc(bs, r.From, netip.Addr.Compare)
		if found {
			i++
		}
		for lo := r.From; ; {
			hi := r.To
			if i < len(bs) && bs[i].Compare(r.To) <= 0 {
				hi = bs[i].Prev()
			}
			if examined == MaxIntervals {
				return spans, lo
			}
			examined++
			c := Compare(current, edited, Target{Role: tgt.Role, AgentID: tgt.AgentID, Addresses: []netip.Addr{lo}}, t)
			if n := len(spans); n > 0 && spans[n-1].Range.To.Next() == lo && samePlans(spans[n-1].Comparison, c) {
				spans[n-1].Range.To = hi
			} else {
				if n == maxSpans {
					return spans, lo
				}
				spans = append(spans, Span{Range: policy.Range{From: lo, To: hi}, Comparison: c})
			}
			if hi == r.To {
				break
			}
			lo = bs[i]
			i++
		}
	}
	return spans, netip.Addr{}
}

// samePlans reports whether a and b have the same plans: the same rule,
// notes and sources (with their entries) under each policy. Only the
// reasons' addresses may differ.
func samePlans(a, b Comparison) bool {
	return sameExplained(a.Current, b.Current) && sameExplained(a.Edited, b.Edited)
}

func sameExplained(a, b Explained) bool {
	if a.Rule != b.Rule || !slices.Equal(a.Notes, b.Notes) || len(a.Categories) != len(b.Categories) {
		return false
	}
	for c, sa := range a.Categories {
		sb, ok := b.Categories[c]
		if !ok || !slices.EqualFunc(sa, sb, func(x, y Step) bool { return x.Source == y.Source && x.Entry == y.Entry }) {
			return false
		}
	}
	return true
}

// mergeRanges returns rs sorted (IPv4 before IPv6), with overlapping and
// adjacent ranges of one family joined and the addresses below start cut
// off.
func mergeRanges(rs []policy.Range, start netip.Addr) []policy.Range {
	var out []policy.Range
	for _, r := range rs {
		if start.IsValid() {
			if r.To.Compare(start) < 0 {
				continue
			}
			if r.From.Compare(start) < 0 {
				r.From = start
			}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b policy.Range) int { return cmp.Or(a.From.Compare(b.From), a.To.Compare(b.To)) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			if last.From.Is4() == r.From.Is4() && (r.From.Compare(last.To) <= 0 || last.To.Next() == r.From) {
				if r.To.Compare(last.To) > 0 {
					last.To = r.To
				}
				continue
			}
		}
		merged = append(merged, r)
	}
	return merged
}
