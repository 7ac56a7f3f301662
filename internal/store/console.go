package store

import (
	"context"
	"database/sql"

	"fmt"
	"strings"
	"time"
	"unicode"
)

// AccountRole is what a console account may do.
type AccountRole string

// The console's roles.
const (
	// AccountAdmin may read and change everything.
	AccountAdmin AccountRole = "admin"
	// AccountViewer may read everything and change nothing.
	AccountViewer AccountRole = "viewer"
)

// Account is an administrator's console account.
type Account struct {
	ID           string
	Name         string
	Role         AccountRole
	PasswordHash string // an encoded password hash (internal/server/console/password); never the password
	Created      time.Time
	Disabled     time.Time // zero while the account may sign in
	LastSignIn   time.Time // zero: never signed in
}

// Session is a signed-in console session. The browser holds the secret;
// the store keeps only its hash.
type Session struct {
	Hash      Hash
	AccountID string
	Created   time.Time
	LastSeen  time.Time
}

// AuditEntry is one change recorded in the audit log.
type AuditEntry struct {
	Seq     int64     // set by the store: increasing in the order of recording
	At      time.Time // set by the store (the clock's now)
	Actor   string    // who: "account:NAME", "token:NAME" (an admin token) or "cli"
	Kind    string    // what kind of change: "policy.set", "component.hold", ...
	Target  string    // what it changed: a component, an endpoint id, a token id ("" when none)
	Summary string    // one line for people
	Before  string    // the state before, when it fits (JSON or text; "" when none)
	After   string    // the state after, when it fits
}

// AuditFilter selects audit entries. Zero fields do not filter.
type AuditFilter struct {
	Actor  string
	Kind   string    // an exact kind, or a prefix ending in "." ("component.")
	Since  time.Time // inclusive
	Until  time.Time // exclusive
	Before int64     // page start: entries with Seq < Before (0: from the newest)
	Limit  int       // <= 0: no limit
}

// Accounts holds the console's accounts, their sessions and the audit log.
type Accounts interface {
	// CreateAccount stores a.Name (1-64 characters: letters, digits, '.',
	// '_', '-' or '@'), a.Role (AccountAdmin or AccountViewer) and
	// a.PasswordHash (non-empty); anything else is ErrInvalid. It sets ID
	// and Created. A name already used is ErrConflict.
	CreateAccount(ctx context.Context, a Account) (Account, error)
	// AccountByName returns the account called name, or ErrNotFound.
	AccountByName(ctx context.Context, name string) (Account, error)
	// ListAccounts returns every account ordered by name.
	ListAccounts(ctx context.Context) ([]Account, error)
	// SetAccountDisabled disables the account called name (disabled
	// true; its sessions are deleted at once, so it is signed out
	// everywhere) or enables it again, and returns it. Disabling the last
	// enabled admin account is ErrConflict; an unknown name ErrNotFound.
	// Disabling a disabled account keeps its first time.
	SetAccountDisabled(ctx context.Context, name string, disabled bool) (Account, error)
	// SetAccountRole gives the account called name role (AccountAdmin or
	// AccountViewer, else ErrInvalid) and returns it. Making the last
	// enabled admin account a viewer is ErrConflict; an unknown name
	// ErrNotFound.
	SetAccountRole(ctx context.Context, name string, role AccountRole) (Account, error)
	// SetAccountPassword stores hash (non-empty, else ErrInvalid) as the
	// password of the account called name and deletes each of its
	// sessions but keep (the session that made the change; zero: none).
	// An unknown name is ErrNotFound.
	SetAccountPassword(ctx context.Context, name, hash string, keep Hash) (Account, error)
	// CreateSession stores a session with s.Hash (non-zero, else
	// ErrInvalid) for the account s.AccountID (unknown: ErrNotFound;
	// disabled: ErrRevoked). It sets Created and LastSeen to the clock's
	// now. A hash already stored is ErrConflict.
	CreateSession(ctx context.Context, s Session) (Session, error)
	// TouchSession returns the session whose secret hashes to h and its
	// account, and sets its LastSeen to the clock's now when it is a
	// minute old or more (a page view within the minute writes nothing). A session idle
	// for idle or longer, or created absolute or longer ago, is deleted and
	// is ErrExpired; an unknown one ErrNotFound; one whose account is
	// disabled ErrRevoked.
	TouchSession(ctx context.Context, h Hash, idle, absolute time.Duration) (Session, Account, error)
	// DeleteSession deletes the session whose secret hashes to h (sign
	// out). Deleting an unknown session succeeds.
	DeleteSession(ctx context.Context, h Hash) error
	// AddAudit records e, setting Seq and At. Actor and Kind are required
	// (ErrInvalid). (A change made with a context carrying an Audit
	// records it in the change's own transaction: see WithAudit.)
	AddAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// AmendAudit replaces the Target, Summary, Before and After of the
	// recorded entry e.Seq (unknown: ErrNotFound): the details of a change
	// known once it is made, added to the entry written with it.
	AmendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit returns the entries matching f, newest first (by Seq), at
	// most f.Limit. To page, pass the last Seq of one page as Before of the
	// next.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// ValidAccountName reports whether name is a valid account name.
func ValidAccountName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-@", r))) {
			return false
		}
	}
	return true
}

const accountCols = "id, name, role, password_hash, created_at, disabled_at, last_signin_at"

func scanAccount(row scanner) (Account, error) {
	var a Account
	var role string
	err := row.Scan(&a.ID, &a.Name, &role, &a.PasswordHash, timeCol{&a.Created}, timeCol{&a.Disabled}, timeCol{&a.LastSignIn})
	a.Role = AccountRole(role)
	return a, err
}

// CreateAccount implements Accounts.
func (s *sqlStore) CreateAccount(ctx context.Context, a Account) (Account, error) {
	const op = "create account"
	if !ValidAccountName(a.Name) {
		return Account{}, fmt.Errorf("%s: %w: name %q must be 1-64 letters, digits, '.', '_', '-' or '@'", op, ErrInvalid, a.Name)
	}
	if a.Role != AccountAdmin && a.Role != AccountViewer {
		return Account{}, fmt.Errorf("%s: %w: role %q (want admin or viewer)", op, ErrInvalid, a.Role)
	}
	if a.PasswordHash == "" {
		return Account{}, fmt.Errorf("%s: %w: a password hash is required", op, ErrInvalid)
	}
	a.Created, a.Disabled = s.now(), timeZero
	a.ID = newID("acct", a.Created)
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, s.q(`INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, ?, ?, ?, NULL, NULL)`),
			a.ID, a.Name, string(a.Role), a.PasswordHash, s.t(a.Created))
		return err
	})
	if err != nil {
		return Account{}, fail(op+" "+a.Name, err)
	}
	return a, nil
}

// AccountByName implements Accounts.
func (s *sqlStore) AccountByName(ctx context.Context, name string) (Account, error) {
	a, err := scanAccount(s.r.QueryRowContext(ctx, s.q(`SELECT `+accountCols+` FROM accounts WHERE name = ?`), name))
	if err != nil {
		return Account{}, fail("read account "+name, err)
	}
	return a, nil
}

// ListAccounts implements Accounts.
func (s *sqlStore) ListAccounts(ctx context.Context) ([]Account, error) {
	const op = "list accounts"
	rows, err := s.r.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY name`)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, scanAccount)
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// CreateSession implements Accounts.
func (s *sqlStore) CreateSession(ctx context.Context, ses Session) (Session, error) {
	const op = "create session"
	if ses.Hash.IsZero() {
		return Session{}, fmt.Errorf("%s: %w: hash is required", op, ErrInvalid)
	}
	ses.Created = s.now()
	ses.LastSeen = ses.Created
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := scanAccount(tx.QueryRowContext(ctx, s.q(`SELECT `+accountCols+` FROM accounts WHERE id = ?`), ses.AccountID))
		if err != nil {
			return err
		}
		if !a.Disabled.IsZero() {
			return fmt.Errorf("account %s: %w", a.Name, ErrRevoked)
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO sessions (secret_hash, account_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)`),
			ses.Hash.String(), ses.AccountID, s.t(ses.Created), s.t(ses.LastSeen))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE accounts SET last_signin_at = ? WHERE id = ?`), s.t(ses.Created), ses.AccountID)
		return err
	})
	if err != nil {
		return Session{}, fail(op, err)
	}
	return ses, nil
}

// sessionTouchEvery is how stale a session's LastSeen may be before
// TouchSession writes it: a page view within it only reads, so that pages
// do not each wait for a durable write (idle expiry is at least minutes).
const sessionTouchEvery = time.Minute

// TouchSession implements Accounts.
func (s *sqlStore) TouchSession(ctx context.Context, h Hash, idle, absolute time.Duration) (Session, Account, error) {
	const op = "check session"
	now := s.now()
	ses := Session{Hash: h}
	var a Account
	row := s.r.QueryRowContext(ctx, s.q(`SELECT s.account_id, s.created_at, s.last_seen_at, `+prefixed("a.", accountCols)+
		` FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.secret_hash = ?`), h.String())
	var role string
	err := row.Scan(&ses.AccountID, timeCol{&ses.Created}, timeCol{&ses.LastSeen},
		&a.ID, &a.Name, &role, &a.PasswordHash, timeCol{&a.Created}, timeCol{&a.Disabled}, timeCol{&a.LastSignIn})
	a.Role = AccountRole(role)
	switch {
	case err != nil:
	case now.Sub(ses.LastSeen) >= idle || now.Sub(ses.Created) >= absolute:
		err = s.write(ctx, func(q querier) error {
			_, err := q.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE secret_hash = ?`), h.String())
			return err
		})
		if err == nil {
			err = ErrExpired
		}
	case !a.Disabled.IsZero():
		err = fmt.Errorf("account %s: %w", a.Name, ErrRevoked)
	case now.Sub(ses.LastSeen) >= sessionTouchEvery:
		ses.LastSeen = now
		err = s.write(ctx, func(q querier) error {
			_, err := q.ExecContext(ctx, s.q(`UPDATE sessions SET last_seen_at = ? WHERE secret_hash = ?`), s.t(now), h.String())
			return err
		})
	}
	if err != nil {
		return Session{}, Account{}, fail(op, err)
	}
	return ses, a, nil
}

// DeleteSession implements Accounts.
func (s *sqlStore) DeleteSession(ctx context.Context, h Hash) error {
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE secret_hash = ?`), h.String())
		return err
	})
	if err != nil {
		return fail("delete session", err)
	}
	return nil
}

const auditCols = "seq, at, actor, kind, target, summary, before_doc, after_doc"

func scanAudit(row scanner) (AuditEntry, error) {
	var e AuditEntry
	err := row.Scan(&e.Seq, timeCol{&e.At}, &e.Actor, &e.Kind, &e.Target, &e.Summary, strCol{&e.Before}, strCol{&e.After})
	return e, err
}

// AddAudit implements Accounts.
func (s *sqlStore) AddAudit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	e, err := s.insertAudit(ctx, s.w, e)
	if err != nil {
		return AuditEntry{}, fail("record audit entry", err)
	}
	return e, nil
}

// ListAudit implements Accounts.
func (s *sqlStore) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	const op = "list audit log"
	where := []string{"1 = 1"}
	var args []any
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.Kind != "" {
		if strings.HasSuffix(f.Kind, ".") {
			where, args = append(where, "substr(kind, 1, ?) = ?"), append(args, len(f.Kind), f.Kind)
		} else {
			where, args = append(where, "kind = ?"), append(args, f.Kind)
		}
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, s.t(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "at < ?"), append(args, s.t(f.Until))
	}
	if f.Before > 0 {
		where, args = append(where, "seq < ?"), append(args, f.Before)
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+auditCols+` FROM audit_log WHERE `+strings.Join(where, " AND ")+
		` ORDER BY seq DESC LIMIT ?`), append(args, sqlLimit(f.Limit))...)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}
