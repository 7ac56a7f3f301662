package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

const adminTokenCols = "id, name, secret_hash, created_at, revoked_at"

func scanAdminToken(row scanner) (AdminToken, error) {
	var t AdminToken
	err := row.Scan(&t.ID, &t.Name, hashCol{&t.Hash}, timeCol{&t.Created}, timeCol{&t.Revoked})
	return t, err
}

// CreateAdminToken implements AdminTokens.
func (s *sqlStore) CreateAdminToken(ctx context.Context, t AdminToken) (AdminToken, error) {
	const op = "create admin token"
	if strings.TrimSpace(t.Name) == "" || t.Hash.IsZero() {
		return AdminToken{}, fmt.Errorf("%s: %w: name and hash are required", op, ErrInvalid)
	}
	t.Created, t.Revoked = s.now(), timeZero
	t.ID = newID("adm", t.Created)
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, s.q(`INSERT INTO admin_tokens (`+adminTokenCols+`) VALUES (?, ?, ?, ?, NULL)`),
			t.ID, t.Name, t.Hash.String(), s.t(t.Created))
		return err
	})
	if err != nil {
		return AdminToken{}, fail(op, err)
	}
	return t, nil
}

// AuthenticateAdmin implements AdminTokens.
func (s *sqlStore) AuthenticateAdmin(ctx context.Context, h Hash) (AdminToken, error) {
	const op = "authenticate admin token"
	t, err := scanAdminToken(s.r.QueryRowContext(ctx,
		s.q(`SELECT `+adminTokenCols+` FROM admin_tokens WHERE secret_hash = ?`), h.String()))
	if err != nil {
		return AdminToken{}, fail(op, err)
	}
	if !t.Revoked.IsZero() {
		return AdminToken{}, fmt.Errorf("%s %s: %w", op, t.ID, ErrRevoked)
	}
	return t, nil
}

// ListAdminTokens implements AdminTokens.
func (s *sqlStore) ListAdminTokens(ctx context.Context) ([]AdminToken, error) {
	const op = "list admin tokens"
	rows, err := s.r.QueryContext(ctx, `SELECT `+adminTokenCols+` FROM admin_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, scanAdminToken)
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// RevokeAdminToken implements AdminTokens.
func (s *sqlStore) RevokeAdminToken(ctx context.Context, id string) error {
	return s.revoke(ctx, "revoke admin token", "admin_tokens", id)
}

// revoke sets revoked_at of the row with this id in table unless set.
func (s *sqlStore) revoke(ctx context.Context, op, table, id string) error {
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, s.q(`UPDATE `+table+` SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`),
			s.t(s.now()), id)
		if err == nil {
			err = affected(res)
		}
		return err
	})
	if err != nil {
		return fail(op+" "+id, err)
	}
	return nil
}

const enrollmentCols = "id, secret_hash, domain, max_uses, uses, expires_at, created_at, revoked_at, agents"

func scanEnrollment(row scanner) (EnrollmentToken, error) {
	var t EnrollmentToken
	err := row.Scan(&t.ID, hashCol{&t.Hash}, &t.Domain, &t.MaxUses, &t.Uses,
		timeCol{&t.Expires}, timeCol{&t.Created}, timeCol{&t.Revoked}, &t.Agents)
	return t, err
}

// CreateEnrollmentToken implements EnrollmentTokens.
func (s *sqlStore) CreateEnrollmentToken(ctx context.Context, t EnrollmentToken) (EnrollmentToken, error) {
	const op = "create enrollment token"
	now := s.now()
	switch {
	case t.Hash.IsZero():
		return EnrollmentToken{}, fmt.Errorf("%s: %w: hash is required", op, ErrInvalid)
	case t.MaxUses < 0:
		return EnrollmentToken{}, fmt.Errorf("%s: %w: negative max uses", op, ErrInvalid)
	case !t.Expires.IsZero() && !normTime(t.Expires).After(now):
		return EnrollmentToken{}, fmt.Errorf("%s: %w: expiry %s is not in the future", op, ErrInvalid, t.Expires)
	}
	t.ID, t.Created, t.Uses, t.Revoked, t.Expires = newID("enr", now), now, 0, timeZero, normTime(t.Expires)
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, s.q(`INSERT INTO enrollment_tokens (`+enrollmentCols+`)
		VALUES (?, ?, ?, ?, 0, ?, ?, NULL, ?)`),
			t.ID, t.Hash.String(), t.Domain, t.MaxUses, s.t(t.Expires), s.t(t.Created), t.Agents)
		return err
	})
	if err != nil {
		return EnrollmentToken{}, fail(op+" for domain "+t.Domain, err)
	}
	return t, nil
}

// RedeemEnrollmentToken implements EnrollmentTokens.
func (s *sqlStore) RedeemEnrollmentToken(ctx context.Context, h Hash) (EnrollmentToken, error) {
	const op = "redeem enrollment token"
	if _, err := s.usableToken(ctx, h); err != nil {
		return EnrollmentToken{}, fail(op, err)
	}
	var t EnrollmentToken
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = s.redeem(ctx, tx, h)
		return err
	})
	if err != nil {
		return EnrollmentToken{}, fail(op, err)
	}
	return t, nil
}

// usableToken looks the token up on a reader, without the write lock, and
// returns it when it can be redeemed now. Whoever reaches the server may
// present a token, so an unknown or unusable one must never take the
// writer (SQLite has one): only a usable token goes on to redeem, which
// checks again inside its write transaction.
func (s *sqlStore) usableToken(ctx context.Context, h Hash) (EnrollmentToken, error) {
	t, err := scanEnrollment(s.r.QueryRowContext(ctx,
		s.q(`SELECT `+enrollmentCols+` FROM enrollment_tokens WHERE secret_hash = ?`), h.String()))
	if err != nil {
		return EnrollmentToken{}, err
	}
	return t, s.tokenUsable(t)
}

// tokenUsable says why t cannot be redeemed now, in the order of the
// contract: revoked, expired, used up; nil when it can.
func (s *sqlStore) tokenUsable(t EnrollmentToken) error {
	switch {
	case !t.Revoked.IsZero():
		return fmt.Errorf("token %s: %w", t.ID, ErrRevoked)
	case !t.Expires.IsZero() && !t.Expires.After(s.now()):
		return fmt.Errorf("token %s: %w", t.ID, ErrExpired)
	case t.MaxUses > 0 && t.Uses >= t.MaxUses:
		return fmt.Errorf("token %s: %w after %d uses", t.ID, ErrExhausted, t.Uses)
	}
	return nil
}

// redeem counts one use of the token in a single conditional UPDATE, so
// the check and the count cannot be separated by a concurrent redeem (on
// PostgreSQL the second UPDATE of a row re-checks its WHERE clause against
// the committed row). When no row qualifies it finds out why.
func (s *sqlStore) redeem(ctx context.Context, q querier, h Hash) (EnrollmentToken, error) {
	now := s.t(s.now())
	t, err := scanEnrollment(q.QueryRowContext(ctx, s.q(`UPDATE enrollment_tokens SET uses = uses + 1
		WHERE secret_hash = ? AND revoked_at IS NULL
		AND (expires_at IS NULL OR expires_at > ?)
		AND (max_uses = 0 OR uses < max_uses)
		RETURNING `+enrollmentCols), h.String(), now))
	if err != sql.ErrNoRows {
		return t, err
	}
	t, err = scanEnrollment(q.QueryRowContext(ctx,
		s.q(`SELECT `+enrollmentCols+` FROM enrollment_tokens WHERE secret_hash = ?`), h.String()))
	if err != nil {
		return EnrollmentToken{}, err
	}
	if err := s.tokenUsable(t); err != nil {
		return EnrollmentToken{}, err
	}
	return EnrollmentToken{}, fmt.Errorf("token %s: %w after %d uses", t.ID, ErrExhausted, t.Uses)
}

// Enroll implements EnrollmentTokens.
func (s *sqlStore) Enroll(ctx context.Context, tokenHash Hash, e Endpoint) (Endpoint, error) {
	const op = "enroll"
	e, err := s.newEndpoint(e)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%s: %w", op, err)
	}
	forbidden := func(t EnrollmentToken) error {
		if e.Role == RoleAgent && !t.Agents {
			return fmt.Errorf("token %s: %w: it does not allow update agents", t.ID, ErrForbiddenRole)
		}
		return nil
	}
	// Refused on a reader first: see usableToken.
	t, err := s.usableToken(ctx, tokenHash)
	if err == nil {
		err = forbidden(t)
	}
	if err == nil {
		err = s.tx(ctx, func(tx *sql.Tx) error {
			t, err := s.redeem(ctx, tx, tokenHash)
			if err != nil {
				return err
			}
			if err := forbidden(t); err != nil {
				return err // rolling back undoes the use redeem counted
			}
			e.Domain = t.Domain
			return s.insertEndpoint(ctx, tx, e)
		})
	}
	if err != nil {
		return Endpoint{}, s.failAgent(ctx, op+" "+e.Hostname, err, e.AgentID)
	}
	return e, nil
}

// ListEnrollmentTokens implements EnrollmentTokens.
func (s *sqlStore) ListEnrollmentTokens(ctx context.Context, domain string) ([]EnrollmentToken, error) {
	const op = "list enrollment tokens"
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+enrollmentCols+` FROM enrollment_tokens
		WHERE (? = '' OR domain = ?) ORDER BY created_at, id`), domain, domain)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, scanEnrollment)
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// RevokeEnrollmentToken implements EnrollmentTokens.
func (s *sqlStore) RevokeEnrollmentToken(ctx context.Context, id string) error {
	return s.revoke(ctx, "revoke enrollment token", "enrollment_tokens", id)
}
