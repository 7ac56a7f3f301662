// Package api is the wire format of the management server's HTTP API
// (docs/api.md): the JSON documents of the admin API under /api/v1 and of
// the endpoint API under /api/v1/enroll and /api/v1/endpoint/, a client
// for both, and the certificate pinning that enrolled endpoints and the
// CLI use to reach a server with a self-signed certificate.
//
// The server (internal/server), the cascade CLI and enrolled endpoints
// (internal/endpoint) all use these types, so the three agree on the
// format by construction. Times are RFC 3339 in UTC; an optional time is
// absent when unset.
package api

import (
	"encoding/json"
	"time"
)

// Error is the body of every error response.
type Error struct {
	// Error is one line saying what went wrong.
	Error string `json:"error"`
	// Problems lists every problem of an invalid policy, one line each
	// (Error is the first, as `cascade explain` prints it).
	Problems []string `json:"problems,omitempty"`
}

// Paths of the endpoint API.
const (
	PathEnroll   = "/api/v1/enroll"
	PathStatus   = "/api/v1/endpoint/status"
	PathReports  = "/api/v1/endpoint/reports"
	PathEvents   = "/api/v1/endpoint/events"
	PathAgentDir = "/api/v1/endpoint/agents"
)

// EnrollRequest registers an endpoint with an enrollment token.
type EnrollRequest struct {
	Token    string `json:"token"`
	Hostname string `json:"hostname"`
	// Role is "client" (default) or "agent"; an agent needs AgentID and a
	// token created with agents (else 403). The administrator can change
	// both later.
	Role      string   `json:"role,omitempty"`
	AgentID   string   `json:"agent_id,omitempty"`
	AgentURL  string   `json:"agent_url,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// EnrollResponse is what an endpoint keeps after enrolling.
type EnrollResponse struct {
	EndpointID string `json:"endpoint_id"`
	// Credential authenticates every later call (Authorization: Bearer).
	// The server keeps only its hash; it is shown once.
	Credential string `json:"credential"`
	Domain     string `json:"domain"`
	Role       string `json:"role"`
	AgentID    string `json:"agent_id,omitempty"`
	// VendorRoot and SiteRoot are the initial root.json of the vendor and
	// site repositories: the endpoint's trust anchors.
	VendorRoot json.RawMessage `json:"vendor_root"`
	SiteRoot   json.RawMessage `json:"site_root"`
	// Policy is the current update-source policy (YAML), used until the
	// signed one is installed from the site repository.
	Policy string  `json:"policy"`
	Agents []Agent `json:"agents"`
	// ServerKeys are the key fingerprints (Fingerprint.String) of every
	// management server of the site, the answering one's first: an
	// endpoint that pins keys pins them all, so that it accepts each of
	// the site's servers (docs/server.md, "Endpoints with several server
	// URLs"). Absent from the answers of earlier versions.
	ServerKeys []string `json:"server_keys,omitempty"`
}

// Agent is one entry of the agent directory: how "agent:ID" sources
// resolve.
type Agent struct {
	AgentID string `json:"agent_id"`
	URL     string `json:"url"`
}

// StatusRequest is an endpoint's heartbeat: what it is and holds.
type StatusRequest struct {
	Hostname  string                       `json:"hostname,omitempty"`
	Addresses []string                     `json:"addresses,omitempty"`
	Installed map[string]map[string]string `json:"installed,omitempty"`
	// AgentURL is the base URL an update agent serves content at.
	AgentURL string `json:"agent_url,omitempty"`
}

// StatusResponse tells an endpoint what the server knows of it, and the
// agent directory.
type StatusResponse struct {
	EndpointID string  `json:"endpoint_id"`
	Domain     string  `json:"domain"`
	Role       string  `json:"role"`
	AgentID    string  `json:"agent_id,omitempty"`
	Agents     []Agent `json:"agents"`
	// ServerKeys are as in EnrollResponse: an endpoint adds those it does
	// not pin yet to its pinned set, so that a server that joins the
	// site is accepted before endpoints are pointed at it.
	ServerKeys []string `json:"server_keys,omitempty"`
}

// ReportUpload carries one update report (package report's JSON form).
type ReportUpload struct {
	// Notification is the id of the notification that triggered the run,
	// if one did: its delivery becomes done (or failed).
	Notification string          `json:"notification,omitempty"`
	Report       json.RawMessage `json:"report"`
}

// ReportAccepted answers a report upload.
type ReportAccepted struct {
	ID string `json:"id"`
}

// Policy is one version of the update-source policy.
type Policy struct {
	Version  int64     `json:"version"`
	Document string    `json:"document"`
	Author   string    `json:"author"`
	Created  time.Time `json:"created"`
}

// PutPolicy replaces the policy. IfVersion, when set, makes the write
// conditional on the current version (409 otherwise).
type PutPolicy struct {
	Document  string `json:"document"`
	IfVersion *int64 `json:"if_version,omitempty"`
}

// Published says what an edit re-signed in the site repository.
type Published struct {
	// Items are the domain_settings items published, with their new
	// versions (empty when nothing changed).
	Items map[string]string `json:"items"`
	// Timestamp is the site repository's timestamp version after it.
	Timestamp int64 `json:"timestamp,omitempty"`
}

// PolicyResult answers a policy change.
type PolicyResult struct {
	Policy    Policy    `json:"policy"`
	Published Published `json:"published"`
}

// Domain is a group of endpoints sharing settings and approvals.
type Domain struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// Settings is a domain's settings document.
type Settings struct {
	Domain    string          `json:"domain"`
	Version   int64           `json:"version"`
	Document  json.RawMessage `json:"document"`
	Updated   time.Time       `json:"updated"`
	Published *Published      `json:"published,omitempty"`
}

// Approval says which program version a domain runs.
type Approval struct {
	Domain    string     `json:"domain"`
	Program   string     `json:"program"`
	Version   string     `json:"version"`
	Approved  time.Time  `json:"approved"`
	Published *Published `json:"published,omitempty"`
}

// Endpoint is one enrolled machine.
type Endpoint struct {
	ID         string                       `json:"id"`
	Hostname   string                       `json:"hostname"`
	Domain     string                       `json:"domain"`
	Role       string                       `json:"role"`
	AgentID    string                       `json:"agent_id,omitempty"`
	AgentURL   string                       `json:"agent_url,omitempty"`
	Addresses  []string                     `json:"addresses"`
	Enrolled   time.Time                    `json:"enrolled"`
	LastSeen   time.Time                    `json:"last_seen"`
	Revoked    *time.Time                   `json:"revoked,omitempty"`
	Connected  bool                         `json:"connected"`
	Installed  map[string]map[string]string `json:"installed"`
	LastReport *Report                      `json:"last_report,omitempty"`
}

// EndpointList is a page of endpoints (GET /api/v1/endpoints); Next,
// when set, is the ?after= value of the next page.
type EndpointList struct {
	Endpoints []Endpoint `json:"endpoints"`
	Next      string     `json:"next,omitempty"`
}

// AgentInfo is one update agent in the agents list (GET /api/v1/agents).
type AgentInfo struct {
	AgentID    string    `json:"agent_id"`
	EndpointID string    `json:"endpoint_id"`
	Hostname   string    `json:"hostname"`
	URL        string    `json:"url,omitempty"`
	LastSeen   time.Time `json:"last_seen"`
	Connected  bool      `json:"connected"`
}

// SetRole designates an endpoint as an update agent (Role "agent", with
// AgentID and optionally the URL it serves at) or back as a client.
type SetRole struct {
	Role     string  `json:"role"`
	AgentID  string  `json:"agent_id,omitempty"`
	AgentURL *string `json:"agent_url,omitempty"`
}

// TokenRequest creates an enrollment token.
type TokenRequest struct {
	Domain string `json:"domain"`
	// Uses is how many enrollments the token allows: 1 by default, 0 for
	// unlimited.
	Uses *int `json:"uses,omitempty"`
	// ExpiresIn is a Go duration ("24h"); empty: never.
	ExpiresIn string `json:"expires_in,omitempty"`
	// Agents lets the token enroll update agents (role agent) as well as
	// clients. Default false: clients only, so that a token handed out for
	// clients cannot create an agent other endpoints would contact.
	Agents bool `json:"agents,omitempty"`
}

// Token is an enrollment token. Secret is set only in the answer to its
// creation.
type Token struct {
	ID      string     `json:"id"`
	Domain  string     `json:"domain"`
	MaxUses int        `json:"max_uses"`
	Uses    int        `json:"uses"`
	Expires *time.Time `json:"expires,omitempty"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
	// Agents: the token may enroll update agents, not only clients.
	Agents bool   `json:"agents"`
	Secret string `json:"token,omitempty"`
}

// AdminToken authenticates the admin API. Secret is set only in the
// answer to its creation.
type AdminToken struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
	Secret  string     `json:"token,omitempty"`
}

// Component is the sync and deployment state of one vendor component.
type Component struct {
	Name       string     `json:"name"`
	Latest     string     `json:"latest"`
	Synced     time.Time  `json:"synced"`
	Deployed   string     `json:"deployed,omitempty"`
	DeployedAt *time.Time `json:"deployed_at,omitempty"`
	Held       bool       `json:"held"`
	Published  *Published `json:"published,omitempty"`
	// Notification is the id of the notification sent because the change
	// deployed a new version.
	Notification string `json:"notification,omitempty"`
}

// Deploy deploys a given version of a component.
type Deploy struct {
	Version string `json:"version"`
}

// SyncResult is the outcome of one copy of the origin.
type SyncResult struct {
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	Timestamp int64     `json:"timestamp,omitempty"`
	UpToDate  bool      `json:"up_to_date"`
	Targets   int       `json:"targets"`
	Fetched   int       `json:"fetched"`
	Bytes     int64     `json:"bytes"`
	// Deployed are the components whose deployed version changed.
	Deployed     map[string]string `json:"deployed,omitempty"`
	Notification string            `json:"notification,omitempty"`
	Error        string            `json:"error,omitempty"`
}

// SyncLogEntry is one sync in the sync log (GET /api/v1/syncs): a
// SyncResult with how it ended and which server process ran it.
type SyncLogEntry struct {
	ID string `json:"id"`
	SyncResult
	// Result is "succeeded", "failed" or "up to date".
	Result string `json:"result"`
	// Server is the URL of the server process that ran the sync.
	Server string `json:"server"`
	// Writer says whether that process was the writer (which records and
	// deploys what a sync brings) or only mirrored the origin.
	Writer bool `json:"writer"`
}

// NotifyRequest notifies endpoints of the deployed components.
type NotifyRequest struct {
	// Domain limits the notification to one domain ("": all).
	Domain string `json:"domain,omitempty"`
}

// Notification announces component versions to endpoints.
type Notification struct {
	ID              string            `json:"id"`
	Created         time.Time         `json:"created"`
	Versions        map[string]string `json:"versions"`
	Domain          string            `json:"domain,omitempty"`
	AgentsFirst     bool              `json:"agents_first"`
	ClientsReleased *time.Time        `json:"clients_released,omitempty"`
	// Deliveries counts, per role at creation, the deliveries in each
	// state (pending, delivered, done, failed).
	Deliveries map[string]map[string]int `json:"deliveries,omitempty"`
}

// Report is an endpoint's update report as the server keeps it.
type Report struct {
	ID         string           `json:"id"`
	EndpointID string           `json:"endpoint_id"`
	ReceivedAt time.Time        `json:"received_at"`
	Trigger    string           `json:"trigger"`
	Started    time.Time        `json:"started"`
	Finished   time.Time        `json:"finished"`
	Result     string           `json:"result"`
	Categories []CategoryReport `json:"categories"`
	// Document is the report as received (without the plan's steps).
	Document json.RawMessage `json:"document,omitempty"`
}

// CategoryReport is one category of a report.
type CategoryReport struct {
	Category string            `json:"category"`
	Result   string            `json:"result"`
	Source   string            `json:"source,omitempty"`
	Before   map[string]string `json:"before,omitempty"`
	After    map[string]string `json:"after,omitempty"`
	Bytes    int64             `json:"bytes"`
	// FullBytes is what the downloads would have taken without deltas
	// (0 when the endpoint did not say).
	FullBytes int64 `json:"full_bytes,omitempty"`
}

// The states of an endpoint in the agent analytical report.
const (
	StateUpToDate = "up_to_date" // its last run succeeded and it holds every deployed component version
	StateBehind   = "behind"     // its last run succeeded but it lacks a deployed component version
	StateFailing  = "failing"    // its last run failed
	StateNoReport = "no_report"  // it has not reported a run yet
)

// AgentReport is the update agent analytical report.
type AgentReport struct {
	Generated     time.Time         `json:"generated"`
	PolicyVersion int64             `json:"policy_version"`
	Deployed      map[string]string `json:"deployed"`
	Agents        []AgentAnalysis   `json:"agents"`
	// Unassigned are the endpoints whose effective list does not start
	// with an update agent (empty, or a URL or the origin first).
	Unassigned AgentAnalysis `json:"unassigned"`
}

// AgentAnalysis is, for one update agent, the endpoints whose effective
// list starts with it.
type AgentAnalysis struct {
	AgentID    string `json:"agent_id,omitempty"`
	EndpointID string `json:"endpoint_id,omitempty"`
	Hostname   string `json:"hostname,omitempty"`
	URL        string `json:"url,omitempty"`
	// InDirectory is false for an agent id that the policy names but no
	// enrolled update agent holds.
	InDirectory bool `json:"in_directory"`
	Endpoints   int  `json:"endpoints"`
	// States counts the endpoints per state (StateUpToDate, ...).
	States map[string]int `json:"states"`
	// Sources counts, per category, where the endpoints' last runs
	// actually updated from ("" when the category failed).
	Sources map[string]map[string]int `json:"sources"`
	// Bytes are what the endpoints' last runs downloaded, FullBytes what
	// they would have downloaded without deltas: the difference is what
	// deltas saved.
	Bytes     int64 `json:"bytes"`
	FullBytes int64 `json:"full_bytes"`
	// Members lists the endpoints (with ?members=true).
	Members []AgentMember `json:"members,omitempty"`
}

// AgentMember is one endpoint of an AgentAnalysis.
type AgentMember struct {
	EndpointID string            `json:"endpoint_id"`
	Hostname   string            `json:"hostname"`
	State      string            `json:"state"`
	Sources    map[string]string `json:"sources,omitempty"`
	Behind     map[string]string `json:"behind,omitempty"`
	// Bytes and FullBytes: as in AgentAnalysis, for its last run.
	Bytes     int64 `json:"bytes"`
	FullBytes int64 `json:"full_bytes"`
}

// Status describes the server.
type Status struct {
	URL         string      `json:"url"`
	Fingerprint string      `json:"fingerprint,omitempty"`
	Origin      string      `json:"origin"`
	Database    string      `json:"database"`
	Site        RepoStatus  `json:"site"`
	LastSync    *SyncResult `json:"last_sync,omitempty"`
	// Syncing is the progress of the sync running now (absent when none).
	Syncing   *SyncProgress `json:"syncing,omitempty"`
	Connected int           `json:"connected"`
	// Writer says whether this process is the one that syncs from the
	// origin, signs the site repository and refreshes its timestamp
	// (several server processes share a PostgreSQL database; one writes).
	Writer bool `json:"writer"`

	// VendorRootSHA256 is the hash of the vendor root the server gives
	// endpoints at enrollment (what --vendor-root-sha256 checks).
	VendorRootSHA256 string `json:"vendor_root_sha256,omitempty"`
}

// SyncProgress is how far the running sync from the origin is: the
// files it has started downloading, the bytes of them it has and their
// total size (which grows as it starts new files).
type SyncProgress struct {
	Started    time.Time `json:"started"`
	Files      int       `json:"files"`
	BytesDone  int64     `json:"bytes_done"`
	BytesTotal int64     `json:"bytes_total"`
}

// RepoStatus is the site repository's state.
type RepoStatus struct {
	Timestamp int64     `json:"timestamp"`
	Expires   time.Time `json:"expires"`
	Warnings  []string  `json:"warnings,omitempty"`
}

// TimePtr returns &t, or nil for the zero time.
func TimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
