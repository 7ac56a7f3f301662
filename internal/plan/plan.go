// Package plan is cascade's decision engine: the update process of
// docs/update-process.md (normative) as a pure function.
//
// For decides, from a policy, an endpoint (role, agent id, addresses) and
// the run's trigger, which categories the run updates and, for each, the
// ordered sources to try with the reason each one is there. A Plan is a
// plain value: it can be logged, serialised, compared and explained.
package plan

import (
	"fmt"
	"net/netip"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/policy"
)

// Role is what an endpoint is.
type Role string

// The endpoint roles.
const (
	RoleAgent  Role = "agent"  // an update agent: relays updates to other endpoints
	RoleClient Role = "client" // every other endpoint
)

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAgent, RoleClient:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want agent or client)", s)
}

// Trigger is what started an update run.
type Trigger string

// The triggers of docs/update-process.md.
const (
	Scheduled        Trigger = "scheduled"
	Manual           Trigger = "manual"            // "update now"
	NotifyComponents Trigger = "notify-components" // the server announced new components
	DefaultTrigger           = Scheduled
)

// ParseTrigger returns the trigger named s.
func ParseTrigger(s string) (Trigger, error) {
	switch t := Trigger(s); t {
	case Scheduled, Manual, NotifyComponents:
		return t, nil
	}
	return "", fmt.Errorf("unknown trigger %q (want scheduled, manual or notify-components)", s)
}

// Categories returns the categories a run with trigger t updates: a
// notify-components run updates components only, the others all three.
func (t Trigger) Categories() []category.Category {
	if t == NotifyComponents {
		return []category.Category{category.Components}
	}
	return category.All
}

// Endpoint is what the decision engine needs to know about an endpoint.
type Endpoint struct {
	Role Role
	// AgentID is the endpoint's own id when it is an update agent; an agent
	// never lists itself.
	AgentID string
	// Addresses are the endpoint's IP addresses; they select the entries of
	// the Customized Update Source List that apply to it.
	Addresses []netip.Addr
}

// Step is one source of a category's plan.
type Step struct {
	Source policy.Source `json:"source"`
	// Entry is the 1-based custom_sources entry the step comes from, or 0
	// when the step is the server or origin added by a rule.
	Entry int `json:"entry,omitempty"`
	// Why says which rule put the source here.
	Why string `json:"why"`
}

// Plan is, for each category the run updates, the ordered sources to try.
// A category the run does not update is absent from Categories.
type Plan struct {
	Role    Role    `json:"role"`
	Trigger Trigger `json:"trigger"`
	// Rule names the rule of docs/update-process.md that decided the plan.
	Rule       string                       `json:"rule"`
	Categories map[category.Category][]Step `json:"categories"`
	// Effective is the endpoint's effective list.
	Effective []Match `json:"effective,omitempty"`
	// Notes explain entries that matched but are not in a category's plan.
	Notes []string `json:"notes,omitempty"`
}

// The rules of docs/update-process.md, as recorded in Plan.Rule.
const (
	RuleOnlyFromServer   = "agents.only_from_server"
	RuleAlwaysFromServer = "agents.always_from_standard_source"
	RuleStandard         = "standard"
	RuleCustomized       = "customized"
)
