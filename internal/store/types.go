package store

import (
	"encoding/json"
	"time"

	"github.com/cascade-update/cascade/internal/category"
)

// AdminToken authenticates the admin API.
type AdminToken struct {
	ID      string
	Name    string // what the token is for, as given by the administrator
	Hash    Hash   // SHA-256 of the secret
	Created time.Time
	Revoked time.Time // zero while valid
}

// EnrollmentToken lets endpoints enroll into Domain.
type EnrollmentToken struct {
	ID      string
	Hash    Hash
	Domain  string
	MaxUses int       // 0: unlimited; 1: single use
	Uses    int       // successful redeems so far
	Expires time.Time // zero: never
	Created time.Time
	Revoked time.Time // zero while valid
	// Agents allows enrolling update agents (role agent). Without it the
	// token enrolls clients only: whoever holds a token handed out for
	// clients cannot create an agent that other endpoints would contact.
	Agents bool
}

// Domain groups endpoints that share settings and program approvals.
type Domain struct {
	Name    string
	Created time.Time
}

// DomainSettings is a domain's settings document. Version starts at 0
// ("{}") and grows by one with every change.
type DomainSettings struct {
	Domain   string
	Version  int64
	Document json.RawMessage
	Updated  time.Time
}

// Role is what an endpoint does in the update tree.
type Role string

// The endpoint roles.
const (
	RoleClient Role = "client"
	RoleAgent  Role = "agent"
)

// Installed lists, per category, the installed version of each item (name
// to version).
type Installed map[category.Category]map[string]string

// Endpoint is one enrolled machine.
type Endpoint struct {
	ID             string
	Hostname       string
	Domain         string
	Role           Role
	AgentID        string   // agents only: the id used as agent:ID in the policy
	AgentURL       string   // the base URL it serves content at, as it reported it (used while an agent)
	Addresses      []string // its IP addresses, as reported
	CredentialHash Hash
	Enrolled       time.Time
	LastSeen       time.Time
	Revoked        time.Time // zero while valid
	Installed      Installed
}

// StatusUpdate is what an endpoint reports with a heartbeat. Nil fields are
// left unchanged.
type StatusUpdate struct {
	Seen      time.Time // zero: the clock's now
	Hostname  *string
	Addresses []string
	Installed Installed
	AgentURL  *string
}

// EndpointFilter selects endpoints (ListEndpoints, LastReports).
type EndpointFilter struct {
	Domain         string // "": every domain
	Role           Role   // "": every role
	IncludeRevoked bool   // ListEndpoints only
	After          string // page start: the last ID of the previous page
	Limit          int    // <= 0: no limit
	WithDocument   bool   // LastReports only: include each report's Document
}

// AgentEntry is one line of the agent directory.
type AgentEntry struct {
	AgentID    string
	URL        string
	EndpointID string
}

// Report is one update run of one endpoint, as the endpoint reported it.
type Report struct {
	ID         string
	EndpointID string
	ReceivedAt time.Time
	Trigger    string // scheduled, manual, notify-components
	Started    time.Time
	Finished   time.Time
	Result     string           // overall result, as the endpoint's report states it
	Categories []CategoryReport // one per category updated, returned ordered by category
	Document   json.RawMessage  // the full report, as received
}

// CategoryReport is the outcome of one category in a run.
type CategoryReport struct {
	Category       category.Category
	Result         string
	Source         string // the source that updated it ("" when none did)
	VersionsBefore map[string]string
	VersionsAfter  map[string]string
	Bytes          int64
	// FullBytes is what the downloads would have taken without deltas
	// (0 when the endpoint did not say).
	FullBytes int64
}

// ReportFilter selects report history.
type ReportFilter struct {
	EndpointID string    // "": every endpoint
	Since      time.Time // inclusive; zero: open
	Until      time.Time // exclusive; zero: open
	Limit      int       // <= 0: no limit
}

// PolicyVersion is one stored version of the update-source policy.
type PolicyVersion struct {
	Version  int64
	Document string // YAML
	Author   string
	Created  time.Time
}

// ProgramApproval says which version of a program a domain runs.
type ProgramApproval struct {
	Domain   string
	Program  string
	Version  string
	Approved time.Time
}

// ComponentState is the sync and deployment state of one vendor component.
type ComponentState struct {
	Name       string
	Latest     string // newest version synced from the origin
	Synced     time.Time
	Deployed   string // version deployed to endpoints ("" before the first)
	DeployedAt time.Time
	Held       bool // when set, syncs do not deploy
}

// Notification announces new content to endpoints.
type Notification struct {
	ID       string
	Created  time.Time
	Versions json.RawMessage // the announced versions
	Domain   string          // "": all domains
	// AgentsFirst holds client deliveries back until ClientsReleased.
	AgentsFirst     bool
	ClientsReleased time.Time // zero while held back
}

// DeliveryState is where a notification's delivery to one endpoint is.
type DeliveryState string

// The delivery states, in order.
const (
	DeliveryPending   DeliveryState = "pending"   // not yet sent
	DeliveryDelivered DeliveryState = "delivered" // sent to the endpoint
	DeliveryDone      DeliveryState = "done"      // the endpoint updated
	DeliveryFailed    DeliveryState = "failed"    // the endpoint's run failed
)

// Delivery is the state of one notification for one endpoint.
type Delivery struct {
	NotificationID string
	EndpointID     string
	Role           Role // the endpoint's role when the notification was created
	State          DeliveryState
	Delivered      time.Time // zero until delivered
	Finished       time.Time // zero until done or failed
	Detail         string    // why it failed
}

// DeliveryFilter selects deliveries.
type DeliveryFilter struct {
	Role  Role          // "": every role
	State DeliveryState // "": every state
}
