package store

import (
	"context"
	"fmt"
	"net/netip"
)

// AddressCounts counts enrolled endpoints by reported address, from the
// address index (migration 0011).
type AddressCounts interface {
	// CountEndpointsInRanges returns, for each range of rs, how many
	// endpoints that are not revoked have at least one reported address
	// in it (an endpoint with addresses in two ranges counts in both).
	// The ranges are inclusive, each of one family as internal/policy's
	// ranges are (an IPv4-mapped IPv6 address counts as IPv4; an IPv6
	// range matches IPv6 addresses only), and within a family in
	// ascending order without overlap: else ErrInvalid. It reads the
	// index once per family, over the addresses from the first range's
	// start to the last one's end.
	CountEndpointsInRanges(ctx context.Context, rs []AddrRange) ([]int, error)
}

// CountEndpointsInRanges implements AddressCounts.
func (s *sqlStore) CountEndpointsInRanges(ctx context.Context, rs []AddrRange) ([]int, error) {
	const op = "count endpoints by address"
	counts := make([]int, len(rs))
	type keyed struct {
		lo, hi string
		i      int
	}
	fams := map[byte][]keyed{}
	for i, r := range rs {
		lo, hi, err := rangeKeys(r.From, r.To)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		f := fams[lo[0]]
		if n := len(f); n > 0 && lo <= f[n-1].hi {
			return nil, fmt.Errorf("%s: %w: range %s-%s is not after the one before it", op, ErrInvalid, r.From, r.To)
		}
		fams[lo[0]] = append(f, keyed{lo, hi, i})
	}
	if len(fams) == 0 {
		return counts, nil
	}
	// Revoked endpoints are left out in Go: the index alone answers the
	// ranges (no lookup of each row's endpoint), and they are few.
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM endpoints WHERE revoked_at IS NOT NULL`)
	if err != nil {
		return nil, fail(op, err)
	}
	revoked, err := collect(rows, func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil {
		return nil, fail(op, err)
	}
	seen := make(map[string]bool, len(revoked))
	for _, f := range fams {
		rows, err := s.r.QueryContext(ctx, s.q(`SELECT a.addr_key, a.endpoint_id FROM endpoint_addresses a
			WHERE a.addr_key BETWEEN ? AND ? ORDER BY a.addr_key`), f[0].lo, f[len(f)-1].hi)
		if err != nil {
			return nil, fail(op, err)
		}
		// seen holds the endpoints counted in range j, and the revoked.
		reset := func() {
			clear(seen)
			for _, id := range revoked {
				seen[id] = true
			}
		}
		reset()
		j := 0
		for rows.Next() {
			var key, id string
			if err := rows.Scan(&key, &id); err != nil {
				rows.Close()
				return nil, fail(op, err)
			}
			if key > f[j].hi {
				for j < len(f) && key > f[j].hi {
					j++
				}
				reset()
			}
			if j == len(f) {
				break
			}
			if key >= f[j].lo && !seen[id] {
				seen[id] = true
				counts[f[j].i]++
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fail(op, err)
		}
	}
	return counts, nil
}

// AddrRange is an inclusive range of addresses of one family.
type AddrRange struct {
	From, To netip.Addr
}
