// Package store is the management server's persistence layer: admin and
// enrollment tokens, domains and their settings, the endpoint registry,
// update reports, the update-source policy history, program approvals,
// component deployment state and notifications.
//
// Open returns a Store backed by embedded SQLite (a file path or
// "sqlite:PATH": one server process) or by PostgreSQL ("postgres://...":
// several server processes share one database). Both run the same SQL
// implementation with a dialect for the few differences, apply the embedded
// schema migrations at open, and pass the same conformance suite
// (internal/testkit/storetest).
//
// Conventions shared by every method:
//   - Every call takes a context; cancelling it aborts the call.
//   - Errors name the failed operation and wrap the package's sentinel
//     errors (ErrNotFound, ErrConflict, ErrReadOnly, ...); check them with
//     errors.Is. A uniqueness conflict is a *ConflictError (errors.As)
//     naming what is taken and, where the store knows, by whom.
//   - Error texts are in the store's words, alike on both databases: a
//     driver's message never appears in them (a client may see them);
//     DriverError returns it for the server's log.
//   - Times are stored and returned in UTC, truncated to microseconds (the
//     precision both databases keep). Times the store sets itself (created,
//     enrolled, received, expiry checks) come from Options.Clock.
//   - IDs are opaque text chosen by the store ("ep_..." for endpoints).
//   - Secrets are never stored: only their SHA-256 (see HashSecret).
//   - Methods returning lists return an empty (non-nil) slice when nothing
//     matches.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every error a Store returns for one of these conditions
// wraps the sentinel, so callers test with errors.Is.
var (
	// ErrNotFound: the addressed record (or a record it refers to, such as
	// the domain of a new endpoint) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness rule was violated (a duplicate name, hash or
	// agent id), a version check failed (optimistic concurrency), a state
	// transition is not allowed, or the record is still referenced.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: an argument breaks a rule the store checks before writing
	// (an empty name, malformed JSON, an unknown role).
	ErrInvalid = errors.New("invalid argument")
	// ErrRevoked: the token or credential exists but was revoked.
	ErrRevoked = errors.New("revoked")
	// ErrExpired: the enrollment token exists but its expiry has passed.
	ErrExpired = errors.New("expired")
	// ErrExhausted: the enrollment token has been used as often as allowed.
	ErrExhausted = errors.New("exhausted")
	// ErrForbiddenRole: the enrollment token does not allow the role the
	// endpoint asked for (an update agent, with a token that lacks Agents).
	ErrForbiddenRole = errors.New("role not allowed")
)

// AnyVersion, given as the expected version of a versioned document
// (policy, domain settings), makes the write unconditional.
const AnyVersion int64 = -1

// Options configure Open. The zero value is usable.
type Options struct {
	// Clock returns the current time. Default time.Now. Tests pass a fake
	// clock to control created, enrolled and expiry times.
	Clock func() time.Time
	// BusyTimeout is how long an SQLite connection waits for a lock held by
	// another process before failing with SQLITE_BUSY. Default 10s. Within
	// one process writes are serialised on a single connection and never
	// wait on each other through SQLite.
	BusyTimeout time.Duration
	// MaxOpenConns caps the connection pool (PostgreSQL, and SQLite
	// readers). Default 16 for PostgreSQL, 8 for SQLite readers.
	MaxOpenConns int
}

// Store is the server's persistence. Implementations are safe for
// concurrent use by many goroutines and, on PostgreSQL, by many processes.
type Store interface {
	// Close releases the database connections. Calls after Close fail.
	Close() error

	AdminTokens
	EnrollmentTokens
	Domains
	Endpoints
	Reports
	Policies
	Programs
	Components
	Notifications
	Accounts
	EndpointPages
	AddressCounts
	Signals
	Syncs
}

// AdminTokens holds the tokens that authenticate the admin API.
type AdminTokens interface {
	// CreateAdminToken stores a token with t.Name and t.Hash (the hash of a
	// secret from NewSecret). It sets ID and Created and returns the stored
	// token. An empty name or zero hash is ErrInvalid; a hash already
	// stored is ErrConflict.
	CreateAdminToken(ctx context.Context, t AdminToken) (AdminToken, error)
	// AuthenticateAdmin returns the token whose secret hashes to h.
	// Unknown hash: ErrNotFound; revoked token: ErrRevoked.
	AuthenticateAdmin(ctx context.Context, h Hash) (AdminToken, error)
	// ListAdminTokens returns every admin token, revoked ones included,
	// oldest first.
	ListAdminTokens(ctx context.Context) ([]AdminToken, error)
	// RevokeAdminToken revokes the token with this id; it can no longer
	// authenticate. Revoking a revoked token keeps the first revocation
	// time and succeeds. Unknown id: ErrNotFound.
	RevokeAdminToken(ctx context.Context, id string) error
}

// EnrollmentTokens holds the tokens endpoints present to enroll.
type EnrollmentTokens interface {
	// CreateEnrollmentToken stores a token for t.Domain with t.Hash,
	// t.MaxUses (0: unlimited, 1: single use), t.Expires (zero: never) and
	// t.Agents (whether it may enroll update agents).
	// It sets ID, Created and Uses (0). The domain must exist (else
	// ErrNotFound); a zero hash, negative MaxUses or an expiry not after
	// the clock's now is ErrInvalid; a hash already stored is ErrConflict.
	CreateEnrollmentToken(ctx context.Context, t EnrollmentToken) (EnrollmentToken, error)
	// RedeemEnrollmentToken checks that the token whose secret hashes to h
	// is valid (not revoked, not expired at the clock's now, not used up)
	// and counts one use, atomically: of concurrent redeems of a token with
	// n uses left, exactly n succeed. It returns the token after the use.
	// Unknown: ErrNotFound; revoked: ErrRevoked; expired: ErrExpired; used
	// up: ErrExhausted (checked in that order).
	RedeemEnrollmentToken(ctx context.Context, h Hash) (EnrollmentToken, error)
	// Enroll redeems the token whose secret hashes to tokenHash, as
	// RedeemEnrollmentToken does, and creates the endpoint e in its domain,
	// as CreateEndpoint does, in one transaction: either both happen or
	// neither (a failed endpoint creation does not use up the token).
	// e.Domain is ignored and set from the token. An endpoint with role
	// agent needs a token with Agents: otherwise ErrForbiddenRole, checked
	// after the token's validity (ErrNotFound, ErrRevoked, ErrExpired,
	// ErrExhausted come first), and the token is not used up. A token
	// refused for any of these reasons is refused without taking the write
	// lock (anyone may present a token); only a usable one opens the write
	// transaction, which checks it again.
	Enroll(ctx context.Context, tokenHash Hash, e Endpoint) (Endpoint, error)
	// ListEnrollmentTokens returns the tokens of domain (every domain when
	// domain is ""), revoked and expired ones included, oldest first.
	ListEnrollmentTokens(ctx context.Context, domain string) ([]EnrollmentToken, error)
	// RevokeEnrollmentToken revokes the token with this id. Revoking twice
	// succeeds and keeps the first time. Unknown id: ErrNotFound.
	RevokeEnrollmentToken(ctx context.Context, id string) error
}

// Domains holds the endpoint domains and each domain's settings document.
type Domains interface {
	// CreateDomain creates the domain name (1-128 characters, no control
	// characters; else ErrInvalid) with empty settings ("{}", version 0).
	// An existing name is ErrConflict.
	CreateDomain(ctx context.Context, name string) (Domain, error)
	// Domain returns the domain name, or ErrNotFound.
	Domain(ctx context.Context, name string) (Domain, error)
	// ListDomains returns every domain ordered by name.
	ListDomains(ctx context.Context) ([]Domain, error)
	// DeleteDomain deletes the domain, its settings and its program
	// approvals. A domain still holding endpoints or enrollment tokens is
	// ErrConflict; an unknown one ErrNotFound.
	DeleteDomain(ctx context.Context, name string) error
	// DomainSettings returns the domain's settings document and version.
	// Unknown domain: ErrNotFound.
	DomainSettings(ctx context.Context, domain string) (DomainSettings, error)
	// PutDomainSettings replaces the domain's settings document with doc (a
	// JSON object, else ErrInvalid) and increments its version by one. When
	// ifVersion is not AnyVersion and differs from the current version the
	// write is refused with ErrConflict. Unknown domain: ErrNotFound.
	PutDomainSettings(ctx context.Context, domain string, doc []byte, ifVersion int64) (DomainSettings, error)
}

// Endpoints is the endpoint registry.
type Endpoints interface {
	// CreateEndpoint registers e, normally at enrollment (see Enroll). It
	// sets ID, Enrolled and LastSeen (both the clock's now); Role defaults
	// to RoleClient. Hostname and CredentialHash are required (ErrInvalid);
	// an agent needs a valid AgentID (policy.ValidAgentID, else
	// ErrInvalid). Unknown domain: ErrNotFound; a credential hash or agent
	// id already in use: ErrConflict.
	CreateEndpoint(ctx context.Context, e Endpoint) (Endpoint, error)
	// CreateEndpoints registers every endpoint of es as CreateEndpoint
	// does each, in one transaction (an imported registry, a benchmark's):
	// all or none. It sets the fields CreateEndpoint sets in the caller's
	// slice.
	CreateEndpoints(ctx context.Context, es []Endpoint) error
	// Endpoint returns the endpoint with this id, revoked or not, or
	// ErrNotFound.
	Endpoint(ctx context.Context, id string) (Endpoint, error)
	// AuthenticateEndpoint returns the endpoint whose credential hashes to
	// h. Unknown: ErrNotFound; revoked: ErrRevoked.
	AuthenticateEndpoint(ctx context.Context, h Hash) (Endpoint, error)
	// UpdateEndpointStatus records what an endpoint reported: LastSeen
	// becomes u.Seen (the clock's now when zero); Hostname, Addresses,
	// Installed and AgentURL are replaced when non-nil. Revoked endpoint:
	// ErrRevoked; unknown: ErrNotFound.
	UpdateEndpointStatus(ctx context.Context, id string, u StatusUpdate) (Endpoint, error)
	// SetEndpointRole makes the endpoint an update agent with the given
	// agent id (validated as for CreateEndpoint) or a client (agentID must
	// be ""; the agent id is cleared, the reported AgentURL kept). An agent
	// id held by another endpoint that is not revoked is ErrConflict;
	// unknown endpoint ErrNotFound; revoked endpoint ErrRevoked.
	SetEndpointRole(ctx context.Context, id string, role Role, agentID string) (Endpoint, error)
	// RevokeEndpoint revokes the endpoint's credential: AuthenticateEndpoint
	// fails from now on, it leaves the agent directory, and its pending or
	// delivered notifications become failed ("endpoint revoked"). Revoking
	// twice succeeds and keeps the first time. Unknown: ErrNotFound.
	RevokeEndpoint(ctx context.Context, id string) error
	// RotateEndpointCredential replaces the endpoint's credential hash (the
	// old credential stops working). Unknown: ErrNotFound; revoked:
	// ErrRevoked; hash in use: ErrConflict.
	RotateEndpointCredential(ctx context.Context, id string, h Hash) error
	// ListEndpoints returns endpoints matching f ordered by ID, at most
	// f.Limit of them (all when Limit <= 0), starting after f.After. To page,
	// pass the last ID of one page as After of the next.
	ListEndpoints(ctx context.Context, f EndpointFilter) ([]Endpoint, error)
	// AgentDirectory returns every non-revoked update agent (agent id, URL,
	// endpoint id), ordered by agent id: what endpoints use to resolve the
	// policy's "agent:ID" sources. URL is "" until the agent reports it.
	AgentDirectory(ctx context.Context) ([]AgentEntry, error)
}

// Reports holds endpoints' update reports.
type Reports interface {
	// AddReports stores reports in one transaction: all or none. For each
	// it sets ID and, when zero, ReceivedAt (the clock's now) in the
	// caller's slice. Each report's EndpointID must exist (else ErrNotFound
	// and nothing is stored); Categories must name distinct categories
	// (else ErrInvalid); Document, when set, must be JSON (else ErrInvalid).
	// The newest report (by ReceivedAt; a later one in the slice wins a
	// tie) becomes the endpoint's last report unless that one is newer.
	// Batching many reports into one call is what makes ingestion fast.
	// Reports are telemetry: on PostgreSQL the commit does not wait for the
	// WAL flush (synchronous_commit off), so a database crash may lose the
	// last moments' reports, never leave a partial batch.
	AddReports(ctx context.Context, reports []Report) error
	// Report returns the report with this id, Document included, or
	// ErrNotFound.
	Report(ctx context.Context, id string) (Report, error)
	// LastReport returns the endpoint's last report, Document included.
	// No report (or unknown endpoint): ErrNotFound.
	LastReport(ctx context.Context, endpointID string) (Report, error)
	// LastReports returns the last report of every endpoint matching f
	// (domain, role; revoked endpoints excluded) that has one, ordered by
	// endpoint ID, without Document unless f.WithDocument. Paging as
	// ListEndpoints, by endpoint ID.
	LastReports(ctx context.Context, f EndpointFilter) ([]Report, error)
	// ListReports returns the reports of f.EndpointID (every endpoint when
	// "") received in [f.Since, f.Until) (zero bounds are open), newest
	// first, at most f.Limit (all when <= 0), without Document.
	ListReports(ctx context.Context, f ReportFilter) ([]Report, error)
	// PruneReports deletes the reports received before `before`, except
	// each endpoint's last report, and returns how many it deleted.
	PruneReports(ctx context.Context, before time.Time) (int64, error)
}

// Policies holds the update-source policy history (docs/policy.md).
type Policies interface {
	// PutPolicy stores doc (non-empty YAML text, not checked further: the
	// caller validates it) as the next policy version (1 for the first)
	// by author, and returns it. When ifVersion is not AnyVersion and the
	// current version (0 when none) differs, it is ErrConflict.
	PutPolicy(ctx context.Context, doc, author string, ifVersion int64) (PolicyVersion, error)
	// CurrentPolicy returns the latest policy version, or ErrNotFound when
	// none was stored.
	CurrentPolicy(ctx context.Context) (PolicyVersion, error)
	// Policy returns the given version, or ErrNotFound.
	Policy(ctx context.Context, version int64) (PolicyVersion, error)
	// ListPolicies returns at most limit versions (all when <= 0), newest
	// first, documents included.
	ListPolicies(ctx context.Context, limit int) ([]PolicyVersion, error)
}

// Programs holds which program version each domain runs.
type Programs interface {
	// ApproveProgram records that a.Domain runs a.Version of a.Program,
	// replacing an earlier approval, and sets a.Approved. Empty fields are
	// ErrInvalid; unknown domain ErrNotFound.
	ApproveProgram(ctx context.Context, a ProgramApproval) (ProgramApproval, error)
	// WithdrawProgramApproval removes the approval of program for domain, or
	// returns ErrNotFound.
	WithdrawProgramApproval(ctx context.Context, domain, program string) error
	// ProgramApprovals returns the approvals of domain (all domains when
	// ""), ordered by domain then program.
	ProgramApprovals(ctx context.Context, domain string) ([]ProgramApproval, error)
}

// Components holds, per vendor component, what was synced from the origin
// and what is deployed to endpoints.
type Components interface {
	// RecordComponentSync records that version is the newest version of
	// the component synced from the origin (creating the component when
	// new). Unless the component is held, version is also deployed.
	// Empty name or version: ErrInvalid.
	RecordComponentSync(ctx context.Context, name, version string) (ComponentState, error)
	// HoldComponent holds (hold true) the component's deployed version:
	// later syncs no longer deploy. Releasing the hold (false) deploys the
	// newest synced version at once. Unknown component: ErrNotFound.
	HoldComponent(ctx context.Context, name string, hold bool) (ComponentState, error)
	// DeployComponent deploys version (for example a rollback or a held
	// version), leaving the hold flag as it is. Unknown component:
	// ErrNotFound; empty version ErrInvalid.
	DeployComponent(ctx context.Context, name, version string) (ComponentState, error)
	// ComponentState returns the state of one component, or ErrNotFound.
	ComponentState(ctx context.Context, name string) (ComponentState, error)
	// ListComponents returns every component ordered by name.
	ListComponents(ctx context.Context) ([]ComponentState, error)
}

// Notifications holds the server's update notifications and their
// per-endpoint delivery state.
type Notifications interface {
	// CreateNotification stores n (Versions a JSON document, else
	// ErrInvalid; Domain "" for all domains) with a pending delivery for
	// each listed endpoint (duplicates ignored; revoked endpoints get
	// none), recording each endpoint's role at this moment. With
	// n.AgentsFirst, client deliveries are held back (see
	// PendingNotifications) until ReleaseClients; otherwise ClientsReleased
	// is set to Created. It sets ID and Created. An unknown endpoint is
	// ErrNotFound and nothing is stored.
	CreateNotification(ctx context.Context, n Notification, endpointIDs []string) (Notification, error)
	// CreateDomainNotification stores n as CreateNotification does, with
	// a pending delivery for every endpoint of n.Domain (of every domain
	// when "") that is not revoked, chosen by the store in the same
	// transaction. n.AgentsFirst is kept only when one of them is an
	// update agent: with no agent to wait for, the clients are released
	// at once (ClientsReleased = Created). It returns the notification and
	// how many deliveries it has.
	CreateDomainNotification(ctx context.Context, n Notification) (Notification, int, error)
	// Notification returns the notification with this id, or ErrNotFound.
	Notification(ctx context.Context, id string) (Notification, error)
	// ListNotifications returns at most limit notifications (all when
	// <= 0), newest first.
	ListNotifications(ctx context.Context, limit int) ([]Notification, error)
	// ReleaseClients lets the client deliveries of an AgentsFirst
	// notification be delivered. Releasing twice keeps the first time.
	// Unknown: ErrNotFound.
	ReleaseClients(ctx context.Context, id string) (Notification, error)
	// ReleaseClientsIf releases the clients of notification id, as
	// ReleaseClients does, if they are still held and the agent
	// deliveries are as cond requires when the release is written (one
	// statement: of several processes deciding at once, one releases).
	// released says whether this call released them; n is the
	// notification as it is now. Unknown: ErrNotFound.
	ReleaseClientsIf(ctx context.Context, id string, cond ReleaseCondition) (n Notification, released bool, err error)
	// PendingNotifications returns the notifications whose delivery to the
	// endpoint is pending and may be delivered now (the endpoint was an
	// agent when it was created, or clients are released), oldest first:
	// what to send an endpoint when it (re)connects.
	PendingNotifications(ctx context.Context, endpointID string) ([]Notification, error)
	// PendingNotificationsOf is PendingNotifications for many endpoints at
	// once (the streams opening at the same moment): by endpoint id,
	// every one of endpointIDs present (with an empty list when nothing is
	// pending for it).
	PendingNotificationsOf(ctx context.Context, endpointIDs []string) (map[string][]Notification, error)
	// DeliveredAfter returns the newest limit notifications delivered
	// to the endpoint (written to its stream) and not finished, created
	// after notification after (ordered by creation, then id; when after
	// is unknown, the newest limit of them), oldest first: what a stream
	// resuming after `after` may have lost with its previous connection,
	// when the process it resumes on did not serve that connection.
	DeliveredAfter(ctx context.Context, endpointID, after string, limit int) ([]Notification, error)
	// SetDeliveryState moves the delivery of notification id to endpoint
	// along pending -> delivered -> done|failed (pending may go straight to
	// done or failed), stamping the time and, for failed, detail. Setting
	// the current state again is a no-op; any other transition is
	// ErrConflict. Unknown delivery: ErrNotFound.
	SetDeliveryState(ctx context.Context, id, endpointID string, state DeliveryState, detail string) error
	// MarkDelivered moves the pending deliveries of notification id to
	// the listed endpoints to delivered, stamping the time, in one
	// transaction, and returns how many it moved. Deliveries in another
	// state and endpoints without a delivery are left alone. It is
	// SetDeliveryState(delivered) for many endpoints at once (the
	// notification hub records the events written to many streams).
	MarkDelivered(ctx context.Context, id string, endpointIDs []string) (int64, error)
	// Deliveries returns the deliveries of notification id matching f,
	// ordered by endpoint ID (an unknown id gives an empty list).
	Deliveries(ctx context.Context, id string, f DeliveryFilter) ([]Delivery, error)
	// PendingEndpoints returns the endpoints whose delivery of
	// notification id is pending, of role ("": every role), in no
	// particular order: what the notification hub offers to the streams
	// it holds, read without the deliveries' other columns (there may be
	// 100,000).
	PendingEndpoints(ctx context.Context, id string, role Role) ([]string, error)
	// DeliveryCounts returns how many deliveries of notification id are in
	// each state, per role at creation: the progress of agents-first
	// ordering. Unknown id: ErrNotFound.
	DeliveryCounts(ctx context.Context, id string) (map[Role]map[DeliveryState]int, error)
	// BeatHub records that the notification hub id (one per server
	// process) runs at the store's now, or with stopped that it stopped,
	// and returns the last time another hub stopped or was heard of
	// before going silent for longer than silence (zero when none): the
	// endpoints of that hub have been reconnecting to the others since.
	// Hubs stopped or silent for a day are forgotten.
	BeatHub(ctx context.Context, id string, stopped bool, silence time.Duration) (time.Time, error)
	// PruneNotifications deletes the notifications created before
	// `before`, with their deliveries, and returns how many it deleted.
	PruneNotifications(ctx context.Context, before time.Time) (int64, error)
}

// Open opens (creating if needed) the database named by dsn, applies the
// embedded migrations it lacks, and returns the Store. dsn is "sqlite:PATH"
// or a plain file path for SQLite, "postgres://..." or "postgresql://..."
// for PostgreSQL (any parameter pgx accepts, search_path included).
// Several processes may Open the same PostgreSQL database at once: the
// migrations run under an advisory lock. A database that cannot be written
// (a read-only file, a read-only role, transaction or standby) is refused
// with ErrReadOnly, found by a write in a transaction that is rolled back;
// the error is one line naming the database (the file, or the URL without
// its password).
func Open(ctx context.Context, dsn string, opts Options) (Store, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	var (
		s   *sqlStore
		err error
		// name is what errors call the database: the file, or the URL
		// without its password.
		name = RedactDSN(dsn)
	)
	switch {
	case hasPrefixFold(dsn, "postgres://"), hasPrefixFold(dsn, "postgresql://"):
		s, err = openPostgres(ctx, dsn, opts)
	default:
		name = sqlitePath(dsn)
		s, err = openSQLite(ctx, dsn, opts)
	}
	if err != nil {
		return nil, openError(name, err)
	}
	err = s.migrate(ctx)
	if err == nil {
		err = s.checkWritable(ctx)
	}
	if err == nil && s.kind == dialectSQLite {
		err = s.prepareBulk(ctx)
	}
	if err != nil {
		s.Close()
		return nil, openError(name, err)
	}
	return s, nil
}

// openError names the database in an error of Open, in the store's words.
func openError(name string, err error) error {
	err = translate(err)
	if errors.Is(err, ErrReadOnly) {
		return fmt.Errorf("database %s cannot be written: %w", name, err)
	}
	return fmt.Errorf("open database %s: %w", name, err)
}

// checkWritable makes a write in a transaction that it rolls back: a
// database the server cannot write is refused at start instead of failing
// every write later (a read-only file, a read-only role or standby).
func (s *sqlStore) checkWritable(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err == nil {
		// A row of a table the server writes in normal operation (a role
		// may lack privileges on schema_migrations, written only by
		// migrations), under a name no domain has.
		now := s.now()
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO domains (name, created_at) VALUES (?, ?)`),
			newID("write-check", now), s.t(now))
		if rerr := tx.Rollback(); err == nil {
			err = rerr
		}
	}
	if err == nil || ctx.Err() != nil {
		return err
	}
	if err = translate(err); errors.Is(err, ErrReadOnly) {
		return err
	}
	return &dbError{kind: ErrReadOnly, msg: err.Error(), cause: DriverError(err)}
}
