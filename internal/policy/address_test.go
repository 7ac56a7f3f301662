package policy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in       string
		from, to string
		err      string
	}{
		// docs/update-process.md: each entry is an address range (IPv4 range, single address, CIDR, IPv6 prefix).
		{in: "10.1.0.0-10.1.255.255", from: "10.1.0.0", to: "10.1.255.255"},
		{in: " 10.1.0.0 - 10.1.0.9 ", from: "10.1.0.0", to: "10.1.0.9"},
		{in: "10.1.2.3", from: "10.1.2.3", to: "10.1.2.3"},
		{in: "10.1.2.3-10.1.2.3", from: "10.1.2.3", to: "10.1.2.3"},
		{in: "10.1.0.0/16", from: "10.1.0.0", to: "10.1.255.255"},
		{in: "0.0.0.0/0", from: "0.0.0.0", to: "255.255.255.255"},
		{in: "10.1.2.3/32", from: "10.1.2.3", to: "10.1.2.3"},
		{in: "2001:db8:10::/48", from: "2001:db8:10::", to: "2001:db8:10:ffff:ffff:ffff:ffff:ffff"},
		{in: "2001:db8::1-2001:db8::ff", from: "2001:db8::1", to: "2001:db8::ff"},
		{in: "::/0", from: "::", to: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{in: "::ffff:10.1.2.3", from: "10.1.2.3", to: "10.1.2.3"},
		{in: "::ffff:10.1.0.0/112", from: "10.1.0.0", to: "10.1.255.255"},
		{in: "::ffff:10.1.0.0-::ffff:10.1.0.9", from: "10.1.0.0", to: "10.1.0.9"},
		{in: "10.1.0.0-::ffff:10.1.0.9", from: "10.1.0.0", to: "10.1.0.9"},
		// IPv6 ranges reaching into the IPv4-mapped block stay IPv6.
		{in: "::/80", from: "::", to: "::ffff:255.255.255.255"},
		{in: "::-::ffff:10.1.2.3", from: "::", to: "::ffff:10.1.2.3"},
		{in: "10.1.0.0-::1", err: "mixes IPv4 and IPv6"},
		{in: "10.1.255.255-10.1.0.0", err: "start 10.1.255.255 is after its end 10.1.0.0"},
		{in: "10.1.0.0-2001:db8::1", err: "mixes IPv4 and IPv6"},
		{in: "", err: "empty"},
		{in: "10.1.0", err: "not an IP address"},
		{in: "10.1.0.0-", err: "not an IP address"},
		{in: "-10.1.0.0", err: "not an IP address"},
		{in: "10.1.0.0/33", err: "not a valid CIDR"},
		{in: "fe80::1%eth0", err: "zone"},
		{in: "::ffff:10.1.0.0/80", err: "at least 96 bits"},
		{in: "host.example", err: "not an IP address"},
		// Host bits are refused with the network as a suggestion.
		{in: "10.3.0.5/16", err: `"10.3.0.5/16" has host bits set (did you mean 10.3.0.0/16? a single address is written without /16)`},
		{in: "10.1.2.3/24", err: "did you mean 10.1.2.0/24?"},
		{in: " 10.1.2.3/8 ", err: "did you mean 10.0.0.0/8?"},
		{in: "10.1.2.3/0", err: "did you mean 0.0.0.0/0?"},
		{in: "2001:db8:10::1/48", err: "did you mean 2001:db8:10::/48?"},
		{in: "::ffff:10.1.2.3/112", err: "did you mean ::ffff:10.1.0.0/112?"},
		{in: "10.1.2.128/25", from: "10.1.2.128", to: "10.1.2.255"},
		{in: "10.1.2.3/32", from: "10.1.2.3", to: "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRange(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseRange(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRange(%q): %v", tt.in, err)
			}
			if r.From.String() != tt.from || r.To.String() != tt.to {
				t.Fatalf("ParseRange(%q) = %s..%s, want %s..%s", tt.in, r.From, r.To, tt.from, tt.to)
			}
		})
	}
}

func TestRangeContains(t *testing.T) {
	tests := []struct {
		rng, addr string
		want      bool
	}{
		{"10.1.0.0-10.1.255.255", "10.1.0.0", true},
		{"10.1.0.0-10.1.255.255", "10.1.255.255", true},
		{"10.1.0.0-10.1.255.255", "10.2.0.0", false},
		{"10.1.0.0-10.1.255.255", "10.0.255.255", false},
		{"10.1.0.0-10.1.255.255", "::ffff:10.1.4.5", true},
		{"10.1.0.0/16", "2001:db8::1", false},
		{"2001:db8:10::/48", "2001:db8:10:1::5", true},
		{"2001:db8:10::/48", "2001:db8:11::5", false},
		{"2001:db8:10::/48", "10.1.0.1", false},
		{"fe80::/10", "fe80::1%eth0", true},
		{"::/0", "10.0.0.1", false},
		{"::/80", "::1", true},
		{"::/80", "10.1.2.3", false},
		{"::/80", "::ffff:10.1.2.3", false},
		{"0.0.0.0/0", "10.0.0.1", true},
	}
	for _, tt := range tests {
		r, err := ParseRange(tt.rng)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("%s contains %s = %v, want %v", tt.rng, tt.addr, got, tt.want)
		}
	}
	if (Range{}).Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("zero Range contains an address")
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"10.1.0.0-10.1.255.255", "10.1.2.3", "10.0.0.0/8", "2001:db8::/32",
		"2001:db8::1-2001:db8::2", "1.2.3.4-1.2.3.3", "::ffff:1.2.3.4/120", "fe80::1%x", "-", "/", "::/80", "::-::ffff:1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error for %q: %v", s, err)
			}
			return
		}
		if r.From.Is4() != r.To.Is4() || r.To.Less(r.From) {
			t.Fatalf("ParseRange(%q) = %s..%s: not an ordered single-family range", s, r.From, r.To)
		}
		// An IPv6 range may end in the IPv4-mapped block, whose addresses
		// are IPv4 ones: it contains its other ends.
		for _, end := range []netip.Addr{r.From, r.To} {
			if r.Contains(end) == end.Is4In6() {
				t.Fatalf("ParseRange(%q) = %s..%s: Contains(%s) = %v", s, r.From, r.To, end, r.Contains(end))
			}
		}
		back, err := ParseRange(r.String())
		if err != nil || back != r {
			t.Fatalf("round trip of %q via %q = %v, %v", s, r.String(), back, err)
		}
	})
}
