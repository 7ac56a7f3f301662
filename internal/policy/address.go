package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Range is an inclusive range of addresses of one family. Every form an
// entry's `addresses` may take (a single address, an IPv4 or IPv6 range
// "start-end", a CIDR or IPv6 prefix) is held as a Range.
type Range struct {
	From, To netip.Addr
}

// ParseRange parses an entry's `addresses` field: "10.1.0.0-10.1.255.255",
// "10.1.2.3", "10.1.0.0/16", "2001:db8:10::/48", "2001:db8::1-2001:db8::ff".
// Zones are refused, and so is a CIDR or prefix with host bits set
// ("10.3.0.5/16": the error suggests 10.3.0.0/16). An IPv4-mapped IPv6
// address (::ffff:a.b.c.d) is an IPv4 address: alone, as both ends of a range, or as a prefix of at
// least 96 bits, it is taken as IPv4. An IPv6 range or prefix that only
// reaches into the mapped block (for example "::/80") stays IPv6 and, like
// every IPv6 range, matches only IPv6 addresses.
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Range{}, errors.New("addresses is empty")
	}
	if strings.Contains(s, "/") {
		return parsePrefix(s)
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		return parseSpan(s[:i], s[i+1:])
	}
	a, err := parseAddr(s)
	if err != nil {
		return Range{}, err
	}
	return Range{From: a, To: a}, nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := parseRaw(s)
	return a.Unmap(), err
}

// parseRaw parses an address without unmapping it.
func parseRaw(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has a zone, which an address range cannot use", s)
	}
	return a, nil
}

func parseSpan(from, to string) (Range, error) {
	a, err := parseRaw(from)
	if err != nil {
		return Range{}, err
	}
	b, err := parseRaw(to)
	if err != nil {
		return Range{}, err
	}
	// Mapped ends are IPv4 unless the other end is a native IPv6
	// address: then the range is IPv6 and they are its bounds.
	if a.Is6() && !a.Is4In6() || b.Is6() && !b.Is4In6() {
		if a.Is4() || b.Is4() {
			return Range{}, fmt.Errorf("range %s-%s mixes IPv4 and IPv6", a, b)
		}
	} else {
		a, b = a.Unmap(), b.Unmap()
	}
	if a.Is4() != b.Is4() {
		return Range{}, fmt.Errorf("range %s-%s mixes IPv4 and IPv6", a, b)
	}
	if b.Less(a) {
		return Range{}, fmt.Errorf("range start %s is after its end %s", a, b)
	}
	return Range{From: a, To: b}, nil
}

func parsePrefix(s string) (Range, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return Range{}, fmt.Errorf("%q is not a valid CIDR or prefix", s)
	}
	if p.Addr().Zone() != "" {
		return Range{}, fmt.Errorf("%q has a zone, which an address range cannot use", s)
	}
	if p.Addr().Is4In6() && p.Bits() < 96 {
		return Range{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least 96 bits", s)
	}
	if m := p.Masked(); m != p {
		// 10.3.0.5/16 is most likely a typo for one of two ranges, so
		// neither is guessed silently.
		return Range{}, fmt.Errorf("%q has host bits set (did you mean %s? a single address is written without /%d)", s, m, p.Bits())
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return Range{From: p.Addr(), To: lastAddr(p)}, nil
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Contains reports whether a lies in r. IPv4-mapped IPv6 addresses match
// IPv4 ranges.
func (r Range) Contains(a netip.Addr) bool {
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	if !r.From.IsValid() || a.Is4() != r.From.Is4() {
		return false
	}
	return r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0
}

// String returns the canonical form of r: a single address, or "from-to".
func (r Range) String() string {
	if r.From == r.To {
		return r.From.String()
	}
	return r.From.String() + "-" + r.To.String()
}
