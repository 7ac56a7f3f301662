package api

import (
	"github.com/cascade-update/cascade/internal/lint"
	"github.com/cascade-update/cascade/internal/whatif"
)

// Paths of the policy tools (docs/api.md, Policy tools).
const (
	PathPolicyLint    = "/api/v1/policy/lint"
	PathPolicyPreview = "/api/v1/policy/preview"
	PathPolicyWhatIf  = "/api/v1/policy/whatif"
)

// LintResult is the answer of GET and POST /api/v1/policy/lint.
type LintResult struct {
	// PolicyVersion is the version linted (GET), 0 for a policy given in
	// the request (POST).
	PolicyVersion int64 `json:"policy_version,omitempty"`
	// Endpoints and Agents count the enrolled (not revoked) endpoints and
	// update agents the policy was checked against.
	Endpoints int            `json:"endpoints"`
	Agents    int            `json:"agents"`
	Warnings  []lint.Warning `json:"warnings"`
}

// PreviewRequest is the body of POST /api/v1/policy/preview.
type PreviewRequest struct {
	// Document is the edited policy (YAML).
	Document string `json:"document"`
	// Trigger is scheduled (default), manual or notify-components.
	Trigger string          `json:"trigger,omitempty"`
	Targets []PreviewTarget `json:"targets"`
}

// PreviewTarget is one thing to preview: an enrolled endpoint (by id or
// hostname; its role, agent id and addresses come from the registry), the
// addresses of one endpoint with a role (client unless given), or a set
// of addresses (Ranges) of endpoints of that role.
type PreviewTarget struct {
	Endpoint  string   `json:"endpoint,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	// Ranges is a set of addresses, each item a single address, a range
	// "from-to", a CIDR or an IPv6 prefix, as a policy entry's addresses
	// are written. The set is split into groups of consecutive addresses
	// with the same plans under both policies (PreviewGroup).
	Ranges []string `json:"ranges,omitempty"`
	// Start (with Ranges) leaves out the addresses below it: the Next of
	// a previous answer, to go on from there.
	Start string `json:"start,omitempty"`
	// Limit (with Ranges) caps the groups answered: default
	// DefaultPreviewGroups, at most MaxPreviewGroups.
	Limit   int    `json:"limit,omitempty"`
	Role    string `json:"role,omitempty"`
	AgentID string `json:"agent_id,omitempty"`
}

// Bounds of a preview of ranges.
const (
	DefaultPreviewGroups = 200
	MaxPreviewGroups     = 1000
	// MaxRangeTargets bounds the targets with ranges in one request.
	MaxRangeTargets = 10
)

// PreviewResult is the answer of POST /api/v1/policy/preview.
type PreviewResult struct {
	// PolicyVersion is the version in force the edited policy is compared
	// with.
	PolicyVersion int64     `json:"policy_version"`
	Previews      []Preview `json:"previews"`
}

// Preview is one target's plans under the policy in force and the edited
// one. For a target with ranges the plans are per group (Groups) and the
// comparison is absent.
type Preview struct {
	// Target is the target resolved: for an endpoint its id, hostname,
	// role, agent id and addresses; for ranges the set, each item in its
	// canonical form.
	Target ResolvedTarget `json:"target"`
	whatif.Comparison
	// Groups (ranges) are the set's groups of consecutive addresses with
	// the same plans under both policies, IPv4 first, in address order.
	Groups []PreviewGroup `json:"groups,omitempty"`
	// Next (ranges), when the groups stop before the end of the set (the
	// limit, or whatif.MaxIntervals intervals examined), is the first
	// address left out: give it as Start to go on.
	Next string `json:"next,omitempty"`
	// ChangedGroups (ranges) counts the groups answered whose plans
	// differ.
	ChangedGroups int `json:"changed_groups,omitempty"`
}

// PreviewGroup is a group of consecutive addresses with the same plan
// under the policy in force and the same plan under the edited one. The
// comparison is computed for its first address (the reasons name it).
type PreviewGroup struct {
	// Addresses is the group as a single address or "from-to".
	Addresses string `json:"addresses"`
	From      string `json:"from"`
	To        string `json:"to"`
	// Endpoints counts the enrolled endpoints (not revoked) with a
	// reported address in the group.
	Endpoints int `json:"endpoints"`
	whatif.Comparison
}

// ResolvedTarget is what a preview was computed for.
type ResolvedTarget struct {
	EndpointID string   `json:"endpoint_id,omitempty"`
	Hostname   string   `json:"hostname,omitempty"`
	Role       string   `json:"role"`
	AgentID    string   `json:"agent_id,omitempty"`
	Addresses  []string `json:"addresses"`
}

// WhatIfRequest is the body of POST /api/v1/policy/whatif.
type WhatIfRequest struct {
	// Document is an edited policy (YAML); "" is the policy in force.
	Document string `json:"document,omitempty"`
	// Down are the sources marked down: "server", "origin", "agent:ID" or
	// a mirror URL.
	Down    []string `json:"down"`
	Trigger string   `json:"trigger,omitempty"`
}

// WhatIfResult is the answer of POST /api/v1/policy/whatif.
type WhatIfResult struct {
	// PolicyVersion is the version in force used, 0 for an edited policy.
	PolicyVersion int64 `json:"policy_version,omitempty"`
	*whatif.Result
	// Notes say what the byte counts could not include (a deployed
	// version the mirrored copy no longer holds, no mirror yet).
	Notes []string `json:"notes,omitempty"`
}
