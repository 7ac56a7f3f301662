package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// The address index (table endpoint_addresses, migration 0011) holds
// every reported address of every endpoint as a key whose text order is
// the order of the addresses within their family, so that "has an
// address in a range" is a BETWEEN on an index in both databases.

// addrKey is the sortable form of an address: "4" and 8 lowercase hex
// digits for an IPv4 address (an IPv4-mapped IPv6 address is IPv4, as
// the policy's ranges take it), "6" and 32 for an IPv6 address. The zone
// is ignored.
func addrKey(a netip.Addr) string { return keyOf(a.Unmap()) }

// keyOf is addrKey without unmapping: a mapped address is IPv6.
func keyOf(a netip.Addr) string {
	if a.Is4() {
		b := a.As4()
		return "4" + hex.EncodeToString(b[:])
	}
	b := a.As16()
	return "6" + hex.EncodeToString(b[:])
}

// rangeKeys returns the keys bounding the inclusive range from-to, which
// must be of one family (IPv4: both Is4; else both IPv6, mapped ones
// included, as a native IPv6 range may start or end in the mapped block).
func rangeKeys(from, to netip.Addr) (lo, hi string, err error) {
	if !from.IsValid() || !to.IsValid() {
		return "", "", fmt.Errorf("%w: an address range needs both ends", ErrInvalid)
	}
	from, to = from.WithZone(""), to.WithZone("")
	if from.Is4() != to.Is4() {
		return "", "", fmt.Errorf("%w: address range %s-%s mixes IPv4 and IPv6", ErrInvalid, from, to)
	}
	if to.Less(from) {
		return "", "", fmt.Errorf("%w: address range start %s is after its end %s", ErrInvalid, from, to)
	}
	return keyOf(from), keyOf(to), nil
}

// addrKeys returns the distinct keys of addrs (valid IP addresses, as
// encodeAddresses leaves them), sorted.
func addrKeys(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, s := range addrs {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, addrKey(a))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// setAddresses makes the address index of endpoint id hold the keys of
// addrs, writing only when they differ from what it holds.
func (s *sqlStore) setAddresses(ctx context.Context, q querier, id string, addrs []string) error {
	want := addrKeys(addrs)
	rows, err := q.QueryContext(ctx, s.q(`SELECT addr_key FROM endpoint_addresses WHERE endpoint_id = ? ORDER BY addr_key`), id)
	if err != nil {
		return err
	}
	have, err := collect(rows, func(r scanner) (string, error) {
		var k string
		return k, r.Scan(&k)
	})
	if err != nil || slices.Equal(have, want) {
		return err
	}
	if _, err := q.ExecContext(ctx, s.q(`DELETE FROM endpoint_addresses WHERE endpoint_id = ?`), id); err != nil {
		return err
	}
	return s.insertAddresses(ctx, q, id, want)
}

// insertAddresses adds the keys of endpoint id to the address index.
func (s *sqlStore) insertAddresses(ctx context.Context, q querier, id string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, id, k)
	}
	_, err := q.ExecContext(ctx, s.q(`INSERT INTO endpoint_addresses (endpoint_id, addr_key) VALUES `+
		strings.TrimSuffix(strings.Repeat("(?, ?), ", len(keys)), ", ")), args...)
	return err
}

// backfillAddresses is migration 0011's Go step: it indexes the
// addresses of every endpoint enrolled before it, a page of endpoints at
// a time, within the migration's transaction.
func (s *sqlStore) backfillAddresses(ctx context.Context, tx *sql.Tx) error {
	const page = 500
	for after := ""; ; {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, addresses FROM endpoints WHERE id > ? ORDER BY id LIMIT ?`), after, page)
		if err != nil {
			return fmt.Errorf("index endpoint addresses: %w", err)
		}
		type ep struct{ id, addrs string }
		eps, err := collect(rows, func(r scanner) (ep, error) {
			var e ep
			return e, r.Scan(&e.id, &e.addrs)
		})
		if err != nil {
			return fmt.Errorf("index endpoint addresses: %w", err)
		}
		for _, e := range eps {
			var addrs []string
			if err := json.Unmarshal([]byte(e.addrs), &addrs); err != nil {
				return fmt.Errorf("index endpoint addresses: endpoint %s: decode addresses: %w", e.id, err)
			}
			if err := s.insertAddresses(ctx, tx, e.id, addrKeys(addrs)); err != nil {
				return fmt.Errorf("index endpoint addresses: endpoint %s: %w", e.id, err)
			}
		}
		if len(eps) < page {
			return nil
		}
		after = eps[len(eps)-1].id
	}
}
