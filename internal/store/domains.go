package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// validName reports whether s can name a domain, program or component:
// 1-128 characters, no control characters, no surrounding space.
func validName(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > 128 || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}

// CreateDomain implements Domains.
func (s *sqlStore) CreateDomain(ctx context.Context, name string) (Domain, error) {
	op := "create domain " + name
	if !validName(name) {
		return Domain{}, fmt.Errorf("%s: %w: a name is 1-128 characters without control characters or surrounding space", op, ErrInvalid)
	}
	d := Domain{Name: name, Created: s.now()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO domains (name, created_at) VALUES (?, ?)`),
			d.Name, s.t(d.Created)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO domain_settings (domain, version, document, updated_at)
			VALUES (?, 0, '{}', ?)`), d.Name, s.t(d.Created))
		return err
	})
	var ce *ConflictError
	if err = translate(err); errors.As(err, &ce) {
		ce.Value = name
	}
	if err != nil {
		return Domain{}, fail(op, err)
	}
	return d, nil
}

func scanDomain(row scanner) (Domain, error) {
	var d Domain
	err := row.Scan(&d.Name, timeCol{&d.Created})
	return d, err
}

// Domain implements Domains.
func (s *sqlStore) Domain(ctx context.Context, name string) (Domain, error) {
	d, err := scanDomain(s.r.QueryRowContext(ctx, s.q(`SELECT name, created_at FROM domains WHERE name = ?`), name))
	if err != nil {
		return Domain{}, fail("get domain "+name, err)
	}
	return d, nil
}

// ListDomains implements Domains.
func (s *sqlStore) ListDomains(ctx context.Context) ([]Domain, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, created_at FROM domains ORDER BY name`)
	if err != nil {
		return nil, fail("list domains", err)
	}
	out, err := collect(rows, scanDomain)
	if err != nil {
		return nil, fail("list domains", err)
	}
	return out, nil
}

// DeleteDomain implements Domains.
func (s *sqlStore) DeleteDomain(ctx context.Context, name string) error {
	op := "delete domain " + name
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var users int
		err := tx.QueryRowContext(ctx, s.q(`SELECT
			(SELECT COUNT(*) FROM endpoints WHERE domain = ?) +
			(SELECT COUNT(*) FROM enrollment_tokens WHERE domain = ?)`), name, name).Scan(&users)
		if err != nil {
			return err
		}
		if users > 0 {
			return fmt.Errorf("%w: %d endpoints and enrollment tokens refer to it", ErrConflict, users)
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM domains WHERE name = ?`), name)
		if err != nil {
			if classify(err) == dbForeignKey { // an endpoint enrolled meanwhile
				return &dbError{kind: ErrConflict, msg: "an endpoint or enrollment token refers to it", cause: err}
			}
			return err
		}
		return affected(res)
	})
	if err != nil {
		return fail(op, err)
	}
	return nil
}

const settingsCols = "domain, version, document, updated_at"

func scanSettings(row scanner) (DomainSettings, error) {
	var d DomainSettings
	var doc string
	err := row.Scan(&d.Domain, &d.Version, &doc, timeCol{&d.Updated})
	d.Document = json.RawMessage(doc)
	return d, err
}

// DomainSettings implements Domains.
func (s *sqlStore) DomainSettings(ctx context.Context, domain string) (DomainSettings, error) {
	d, err := scanSettings(s.r.QueryRowContext(ctx,
		s.q(`SELECT `+settingsCols+` FROM domain_settings WHERE domain = ?`), domain))
	if err != nil {
		return DomainSettings{}, fail("get settings of domain "+domain, err)
	}
	return d, nil
}

// PutDomainSettings implements Domains.
func (s *sqlStore) PutDomainSettings(ctx context.Context, domain string, doc []byte, ifVersion int64) (DomainSettings, error) {
	op := "put settings of domain " + domain
	if t := bytes.TrimSpace(doc); !json.Valid(t) || len(t) == 0 || t[0] != '{' {
		return DomainSettings{}, fmt.Errorf("%s: %w: the document must be a JSON object", op, ErrInvalid)
	}
	var d DomainSettings
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = scanSettings(tx.QueryRowContext(ctx, s.q(`UPDATE domain_settings
			SET version = version + 1, document = ?, updated_at = ?
			WHERE domain = ? AND (? < 0 OR version = ?)
			RETURNING `+settingsCols), string(doc), s.t(s.now()), domain, ifVersion, ifVersion))
		if err != sql.ErrNoRows {
			return err
		}
		var cur int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT version FROM domain_settings WHERE domain = ?`), domain).Scan(&cur); err != nil {
			return err
		}
		return fmt.Errorf("%w: version is %d, not %d", ErrConflict, cur, ifVersion)
	})
	if err != nil {
		return DomainSettings{}, fail(op, err)
	}
	return d, nil
}

const approvalCols = "domain, program, version, approved_at"

func scanApproval(row scanner) (ProgramApproval, error) {
	var a ProgramApproval
	err := row.Scan(&a.Domain, &a.Program, &a.Version, timeCol{&a.Approved})
	return a, err
}

// ApproveProgram implements Programs.
func (s *sqlStore) ApproveProgram(ctx context.Context, a ProgramApproval) (ProgramApproval, error) {
	op := fmt.Sprintf("approve program %s %s for domain %s", a.Program, a.Version, a.Domain)
	if a.Domain == "" || !validName(a.Program) || !validName(a.Version) {
		return ProgramApproval{}, fmt.Errorf("%s: %w: domain, program and version are required", op, ErrInvalid)
	}
	a.Approved = s.now()
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, s.q(`INSERT INTO program_approvals (`+approvalCols+`) VALUES (?, ?, ?, ?)
		ON CONFLICT (domain, program) DO UPDATE SET version = excluded.version, approved_at = excluded.approved_at`),
			a.Domain, a.Program, a.Version, s.t(a.Approved))
		return err
	})
	if err != nil {
		return ProgramApproval{}, fail(op, err)
	}
	return a, nil
}

// WithdrawProgramApproval implements Programs.
func (s *sqlStore) WithdrawProgramApproval(ctx context.Context, domain, program string) error {
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, s.q(`DELETE FROM program_approvals WHERE domain = ? AND program = ?`), domain, program)
		if err == nil {
			err = affected(res)
		}
		return err
	})
	if err != nil {
		return fail(fmt.Sprintf("withdraw approval of program %s for domain %s", program, domain), err)
	}
	return nil
}

// ProgramApprovals implements Programs.
func (s *sqlStore) ProgramApprovals(ctx context.Context, domain string) ([]ProgramApproval, error) {
	const op = "list program approvals"
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+approvalCols+` FROM program_approvals
		WHERE (? = '' OR domain = ?) ORDER BY domain, program`), domain, domain)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, scanApproval)
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}
