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
// hostname; its role, agent id and addresses come from the registry) or a
// set of addresses of one endpoint with a role (client unless given).
type PreviewTarget struct {
	Endpoint  string   `json:"endpoint,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	Role      string   `json:"role,omitempty"`
	AgentID   string   `json:"agent_id,omitempty"`
}

// PreviewResult is the answer of POST /api/v1/policy/preview.
type PreviewResult struct {
	// PolicyVersion is the version in force the edited policy is compared
	// with.
	PolicyVersion int64     `json:"policy_version"`
	Previews      []Preview `json:"previews"`
}

// Preview is one target's plans under the policy in force and the edited
// one.
type Preview struct {
	// Target is the target resolved: for an endpoint its id, hostname,
	// role, agent id and addresses.
	Target ResolvedTarget `json:"target"`
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
