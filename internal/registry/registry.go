// Package registry is a snapshot of the management server's endpoint
// registry in the form the policy tools read it (internal/lint,
// internal/whatif): plain values, no database, so that those tools can be
// tested with a table and fed from any store.
package registry

import (
	"net/netip"
	"strings"

	"github.com/cascade-update/cascade/internal/plan"
)

// Endpoint is one enrolled endpoint as the policy tools see it.
type Endpoint struct {
	ID       string
	Hostname string
	Role     plan.Role
	// AgentID is the id the policy names as agent:ID. A revoked agent
	// keeps the id it had.
	AgentID string
	// AgentURL is where an agent serves content, as it reported it; ""
	// until it does (endpoints cannot reach it before).
	AgentURL string
	// Addresses are the endpoint's reported IP addresses (zones removed,
	// IPv4-mapped addresses unmapped).
	Addresses []netip.Addr
	Revoked   bool
	// Components maps each installed component to its version.
	Components map[string]string
}

// Snapshot is every endpoint of the registry, revoked ones included.
type Snapshot struct {
	Endpoints []Endpoint
}

// ParseAddresses parses reported addresses as the registry holds them
// (strings), skipping any that is not an IP address, and returns them in
// the form ranges are matched against (zone removed, IPv4-mapped
// addresses unmapped).
func ParseAddresses(ss []string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			continue
		}
		out = append(out, Normal(a))
	}
	return out
}

// Normal returns a without zone and unmapped, as policy.Range.Contains
// compares it.
func Normal(a netip.Addr) netip.Addr {
	return a.WithZone("").Unmap()
}

// Agents returns the non-revoked update agents by agent id.
func (s *Snapshot) Agents() map[string]*Endpoint {
	out := map[string]*Endpoint{}
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		if e.Role == plan.RoleAgent && !e.Revoked && e.AgentID != "" {
			out[e.AgentID] = e
		}
	}
	return out
}
