package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode"

	"github.com/cascade-update/cascade/internal/policy"
)

// endpointCols are the endpoint columns that scanEndpoint reads, and eCols
// the same for the table aliased as e. (SQLite's RETURNING takes no
// qualified names.)
const endpointCols = `id, hostname, domain, role, agent_id, agent_url, addresses,
	credential_hash, enrolled_at, last_seen_at, revoked_at, installed`

var eCols = prefixed("e.", endpointCols)

func scanEndpoint(row scanner) (Endpoint, error) {
	var (
		e             Endpoint
		role          string
		addrs, instal string
	)
	err := row.Scan(&e.ID, &e.Hostname, &e.Domain, &role, strCol{&e.AgentID}, strCol{&e.AgentURL}, &addrs,
		hashCol{&e.CredentialHash}, timeCol{&e.Enrolled}, timeCol{&e.LastSeen}, timeCol{&e.Revoked}, &instal)
	if err != nil {
		return Endpoint{}, err
	}
	e.Role = Role(role)
	if err := json.Unmarshal([]byte(addrs), &e.Addresses); err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %s: decode addresses: %w", e.ID, err)
	}
	if err := json.Unmarshal([]byte(instal), &e.Installed); err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %s: decode installed versions: %w", e.ID, err)
	}
	return e, nil
}

// checkRole validates a role and agent id pair.
func checkRole(role Role, agentID string) error {
	switch role {
	case RoleAgent:
		if !policy.ValidAgentID(agentID) {
			return fmt.Errorf("%w: agent id %q must be 1-128 letters, digits, '.', '_' or '-'", ErrInvalid, agentID)
		}
	case RoleClient:
		if agentID != "" {
			return fmt.Errorf("%w: a client has no agent id", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: role %q (want client or agent)", ErrInvalid, role)
	}
	return nil
}

// checkHostname accepts 1-255 characters without control characters.
func checkHostname(h string) error {
	if h == "" || len(h) > 255 || strings.IndexFunc(h, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: hostname %q", ErrInvalid, h)
	}
	return nil
}

// encodeAddresses validates IP addresses and returns them, normalised, as
// JSON.
func encodeAddresses(addrs []string) (string, []string, error) {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return "", nil, fmt.Errorf("%w: address %q is not an IP address", ErrInvalid, a)
		}
		out = append(out, ip.String())
	}
	b, err := json.Marshal(out)
	return string(b), out, err
}

func encodeInstalled(in Installed) (string, Installed, error) {
	if in == nil {
		in = Installed{}
	}
	b, err := json.Marshal(in)
	return string(b), in, err
}

// newEndpoint validates e and fills the fields the store sets.
func (s *sqlStore) newEndpoint(e Endpoint) (Endpoint, error) {
	if e.Role == "" {
		e.Role = RoleClient
	}
	if err := checkHostname(e.Hostname); err != nil {
		return Endpoint{}, err
	}
	if err := checkRole(e.Role, e.AgentID); err != nil {
		return Endpoint{}, err
	}
	if e.CredentialHash.IsZero() {
		return Endpoint{}, fmt.Errorf("%w: credential hash is required", ErrInvalid)
	}
	var err error
	if _, e.Addresses, err = encodeAddresses(e.Addresses); err != nil {
		return Endpoint{}, err
	}
	_, e.Installed, _ = encodeInstalled(e.Installed)
	e.Enrolled, e.Revoked = s.now(), timeZero
	e.ID = newID("ep", e.Enrolled)
	e.LastSeen = e.Enrolled
	return e, nil
}

// insertEndpoint inserts an endpoint prepared by newEndpoint.
func (s *sqlStore) insertEndpoint(ctx context.Context, q querier, e Endpoint) error {
	addrs, _, err := encodeAddresses(e.Addresses)
	if err != nil {
		return err
	}
	inst, _, err := encodeInstalled(e.Installed)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, s.q(`INSERT INTO endpoints (id, hostname, domain, role, agent_id, agent_url,
		addresses, credential_hash, enrolled_at, last_seen_at, revoked_at, installed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)`),
		e.ID, e.Hostname, e.Domain, string(e.Role), nullStr(e.AgentID), nullStr(e.AgentURL),
		addrs, e.CredentialHash.String(), s.t(e.Enrolled), s.t(e.LastSeen), inst)
	if err != nil {
		return err
	}
	return s.insertAddresses(ctx, q, e.ID, addrKeys(e.Addresses))
}

// CreateEndpoint implements Endpoints.
func (s *sqlStore) CreateEndpoint(ctx context.Context, e Endpoint) (Endpoint, error) {
	op := "create endpoint " + e.Hostname
	e, err := s.newEndpoint(e)
	if err == nil {
		err = s.tx(ctx, func(tx *sql.Tx) error { return s.insertEndpoint(ctx, tx, e) })
	}
	if err != nil {
		return Endpoint{}, s.failAgent(ctx, op, err, e.AgentID)
	}
	return e, nil
}

// CreateEndpoints implements Endpoints.
func (s *sqlStore) CreateEndpoints(ctx context.Context, es []Endpoint) error {
	op := fmt.Sprintf("create %d endpoints", len(es))
	rows := make([][]any, len(es))
	for i := range es {
		e, err := s.newEndpoint(es[i])
		if err != nil {
			return fail(op+": endpoint "+es[i].Hostname, err)
		}
		addrs, _, _ := encodeAddresses(e.Addresses) // valid: newEndpoint checked them
		inst, _, err := encodeInstalled(e.Installed)
		if err != nil {
			return fail(op+": endpoint "+e.Hostname, err)
		}
		es[i] = e
		rows[i] = []any{e.ID, e.Hostname, e.Domain, string(e.Role), nullStr(e.AgentID), nullStr(e.AgentURL),
			addrs, e.CredentialHash.String(), s.t(e.Enrolled), s.t(e.LastSeen), inst}
	}
	if len(rows) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error { return s.bulkInsert(ctx, tx, insertEndpoints, rows) })
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// failAgent is fail for an operation that sets agentID: the
// ConflictError of an agent id already in use names the agent id and the
// endpoint holding it.
func (s *sqlStore) failAgent(ctx context.Context, op string, err error, agentID string) error {
	err = translate(err)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Key != "agent id" {
		return fail(op, err)
	}
	ce.Value = agentID
	var id, host string
	if s.r.QueryRowContext(ctx, s.q(`SELECT id, hostname FROM endpoints WHERE agent_id = ? AND revoked_at IS NULL`),
		agentID).Scan(&id, &host) == nil {
		ce.Holder = "endpoint " + host + " (" + id + ")"
	}
	return fail(op, err)
}

// Endpoint implements Endpoints.
func (s *sqlStore) Endpoint(ctx context.Context, id string) (Endpoint, error) {
	e, err := scanEndpoint(s.r.QueryRowContext(ctx, s.q(`SELECT `+eCols+` FROM endpoints e WHERE e.id = ?`), id))
	if err != nil {
		return Endpoint{}, fail("get endpoint "+id, err)
	}
	return e, nil
}

// AuthenticateEndpoint implements Endpoints.
func (s *sqlStore) AuthenticateEndpoint(ctx context.Context, h Hash) (Endpoint, error) {
	const op = "authenticate endpoint"
	e, err := scanEndpoint(s.r.QueryRowContext(ctx,
		s.q(`SELECT `+eCols+` FROM endpoints e WHERE e.credential_hash = ?`), h.String()))
	if err != nil {
		return Endpoint{}, fail(op, err)
	}
	if !e.Revoked.IsZero() {
		return Endpoint{}, fmt.Errorf("%s %s: %w", op, e.ID, ErrRevoked)
	}
	return e, nil
}

// updateLive runs an UPDATE of the endpoint id, which must not be revoked,
// returning the updated endpoint. set is the SET clause, args its
// arguments. Revocation is final, so telling a revoked endpoint from a
// missing one after the UPDATE needs no transaction.
func (s *sqlStore) updateLive(ctx context.Context, id, set string, args ...any) (e Endpoint, err error) {
	err = s.write(ctx, func(q querier) (err error) {
		e, err = s.updateLiveIn(ctx, q, id, set, args...)
		return err
	})
	return e, err
}

// updateLiveIn is updateLive with q, in a transaction of the caller's.
func (s *sqlStore) updateLiveIn(ctx context.Context, q querier, id, set string, args ...any) (Endpoint, error) {
	e, err := scanEndpoint(q.QueryRowContext(ctx, s.q(`UPDATE endpoints SET `+set+`
		WHERE id = ? AND revoked_at IS NULL RETURNING `+endpointCols), append(args, id)...))
	if !errors.Is(err, sql.ErrNoRows) {
		return e, err
	}
	var one int
	if err := q.QueryRowContext(ctx, s.q(`SELECT 1 FROM endpoints WHERE id = ?`), id).Scan(&one); err != nil {
		return Endpoint{}, err
	}
	return Endpoint{}, ErrRevoked
}

// UpdateEndpointStatus implements Endpoints.
func (s *sqlStore) UpdateEndpointStatus(ctx context.Context, id string, u StatusUpdate) (Endpoint, error) {
	op := "update status of endpoint " + id
	seen := u.Seen
	if seen.IsZero() {
		seen = s.now()
	}
	set, args := []string{"last_seen_at = ?"}, []any{s.t(seen)}
	if u.Hostname != nil {
		if err := checkHostname(*u.Hostname); err != nil {
			return Endpoint{}, fmt.Errorf("%s: %w", op, err)
		}
		set, args = append(set, "hostname = ?"), append(args, *u.Hostname)
	}
	if u.Addresses != nil {
		addrs, _, err := encodeAddresses(u.Addresses)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%s: %w", op, err)
		}
		set, args = append(set, "addresses = ?"), append(args, addrs)
	}
	if u.Installed != nil {
		inst, _, err := encodeInstalled(u.Installed)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%s: %w", op, err)
		}
		set, args = append(set, "installed = ?"), append(args, inst)
	}
	if u.AgentURL != nil {
		set, args = append(set, "agent_url = ?"), append(args, nullStr(*u.AgentURL))
	}
	var e Endpoint
	var err error
	if u.Addresses == nil {
		e, err = s.updateLive(ctx, id, strings.Join(set, ", "), args...)
	} else {
		// The address index changes with the addresses.
		err = s.tx(ctx, func(tx *sql.Tx) error {
			if e, err = s.updateLiveIn(ctx, tx, id, strings.Join(set, ", "), args...); err != nil {
				return err
			}
			return s.setAddresses(ctx, tx, id, e.Addresses)
		})
	}
	if err != nil {
		return Endpoint{}, fail(op, err)
	}
	return e, nil
}

// SetEndpointRole implements Endpoints.
func (s *sqlStore) SetEndpointRole(ctx context.Context, id string, role Role, agentID string) (Endpoint, error) {
	op := fmt.Sprintf("set role of endpoint %s to %s", id, role)
	if err := checkRole(role, agentID); err != nil {
		return Endpoint{}, fmt.Errorf("%s: %w", op, err)
	}
	e, err := s.updateLive(ctx, id, "role = ?, agent_id = ?", string(role), nullStr(agentID))
	if err != nil {
		return Endpoint{}, s.failAgent(ctx, op, err, agentID)
	}
	return e, nil
}

// RevokeEndpoint implements Endpoints. Deliveries still pending or
// delivered to the endpoint are marked failed ("endpoint revoked"), so
// that they no longer count as outstanding.
func (s *sqlStore) RevokeEndpoint(ctx context.Context, id string) error {
	now := s.t(s.now())
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE endpoints SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`), now, id)
		if err != nil {
			return err
		}
		if err := affected(res); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE notification_deliveries
			SET state = 'failed', finished_at = ?, detail = 'endpoint revoked'
			WHERE endpoint_id = ? AND state IN ('pending', 'delivered')`), now, id)
		return err
	})
	if err != nil {
		return fail("revoke endpoint "+id, err)
	}
	return nil
}

// RotateEndpointCredential implements Endpoints.
func (s *sqlStore) RotateEndpointCredential(ctx context.Context, id string, h Hash) error {
	op := "rotate credential of endpoint " + id
	if h.IsZero() {
		return fmt.Errorf("%s: %w: hash is required", op, ErrInvalid)
	}
	if _, err := s.updateLive(ctx, id, "credential_hash = ?", h.String()); err != nil {
		return fail(op, err)
	}
	return nil
}

// endpointWhere returns the WHERE clause selecting f's endpoints (table
// alias e) and its arguments; revoked says whether revoked ones qualify.
func endpointWhere(f EndpointFilter, revoked bool) (string, []any) {
	// Only the conditions that filter, so that the databases use the
	// indexes on domain and role (a condition "? = '' OR e.role = ?"
	// reads the whole table).
	where, args := []string{"e.id > ?"}, []any{f.After}
	if f.Domain != "" {
		where, args = append(where, "e.domain = ?"), append(args, f.Domain)
	}
	if f.Role != "" {
		where, args = append(where, "e.role = ?"), append(args, string(f.Role))
	}
	if !revoked {
		where = append(where, "e.revoked_at IS NULL")
	}
	return strings.Join(where, " AND "), args
}

// ListEndpoints implements Endpoints.
func (s *sqlStore) ListEndpoints(ctx context.Context, f EndpointFilter) ([]Endpoint, error) {
	const op = "list endpoints"
	where, args := endpointWhere(f, f.IncludeRevoked)
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+eCols+` FROM endpoints e WHERE `+where+
		` ORDER BY e.id LIMIT ?`), append(args, sqlLimit(f.Limit))...)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, scanEndpoint)
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// AgentDirectory implements Endpoints.
func (s *sqlStore) AgentDirectory(ctx context.Context) ([]AgentEntry, error) {
	const op = "read agent directory"
	rows, err := s.r.QueryContext(ctx, `SELECT agent_id, agent_url, id FROM endpoints
		WHERE role = 'agent' AND revoked_at IS NULL ORDER BY agent_id`)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, func(row scanner) (AgentEntry, error) {
		var a AgentEntry
		err := row.Scan(&a.AgentID, strCol{&a.URL}, &a.EndpointID)
		return a, err
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}
