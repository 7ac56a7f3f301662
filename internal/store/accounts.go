package store

import (
	"context"
	"database/sql"
	"fmt"
)

// changeAccount runs change on the account called name within a
// transaction and returns the account as it then is. With guard, the
// change must leave an enabled admin account: it fails with ErrConflict
// when name is the last one (the enabled admin accounts are locked
// first on PostgreSQL, so two concurrent changes cannot both pass).
func (s *sqlStore) changeAccount(ctx context.Context, op, name string, guard bool, change func(tx *sql.Tx, a Account) error) (Account, error) {
	var a Account
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if guard {
			lock := `SELECT name FROM accounts WHERE role = 'admin' AND disabled_at IS NULL ORDER BY name`
			if s.kind == dialectPostgres {
				lock += ` FOR UPDATE`
			}
			rows, err := tx.QueryContext(ctx, lock)
			if err != nil {
				return err
			}
			admins, err := collect(rows, func(r scanner) (string, error) {
				var n string
				return n, r.Scan(&n)
			})
			if err != nil {
				return err
			}
			if len(admins) == 1 && admins[0] == name {
				return fmt.Errorf("%w: %s is the last enabled admin account (make another admin first)", ErrConflict, name)
			}
		}
		if a, err = scanAccount(tx.QueryRowContext(ctx, s.q(`SELECT `+accountCols+` FROM accounts WHERE name = ?`), name)); err != nil {
			return err
		}
		if err := change(tx, a); err != nil {
			return err
		}
		a, err = scanAccount(tx.QueryRowContext(ctx, s.q(`SELECT `+accountCols+` FROM accounts WHERE name = ?`), name))
		return err
	})
	if err != nil {
		return Account{}, fail(op+" "+name, err)
	}
	return a, nil
}

// SetAccountDisabled implements Accounts.
func (s *sqlStore) SetAccountDisabled(ctx context.Context, name string, disabled bool) (Account, error) {
	if !disabled {
		return s.changeAccount(ctx, "enable account", name, false, func(tx *sql.Tx, a Account) error {
			_, err := tx.ExecContext(ctx, s.q(`UPDATE accounts SET disabled_at = NULL WHERE id = ?`), a.ID)
			return err
		})
	}
	now := s.now()
	return s.changeAccount(ctx, "disable account", name, true, func(tx *sql.Tx, a Account) error {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE accounts SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?`), s.t(now), a.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE account_id = ?`), a.ID)
		return err
	})
}

// SetAccountRole implements Accounts.
func (s *sqlStore) SetAccountRole(ctx context.Context, name string, role AccountRole) (Account, error) {
	const op = "set role of account"
	if role != AccountAdmin && role != AccountViewer {
		return Account{}, fmt.Errorf("%s %s: %w: role %q (want admin or viewer)", op, name, ErrInvalid, role)
	}
	return s.changeAccount(ctx, op, name, role != AccountAdmin, func(tx *sql.Tx, a Account) error {
		_, err := tx.ExecContext(ctx, s.q(`UPDATE accounts SET role = ? WHERE id = ?`), string(role), a.ID)
		return err
	})
}

// SetAccountPassword implements Accounts.
func (s *sqlStore) SetAccountPassword(ctx context.Context, name, hash string, keep Hash) (Account, error) {
	const op = "set password of account"
	if hash == "" {
		return Account{}, fmt.Errorf("%s %s: %w: a password hash is required", op, name, ErrInvalid)
	}
	return s.changeAccount(ctx, op, name, false, func(tx *sql.Tx, a Account) error {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE accounts SET password_hash = ? WHERE id = ?`), hash, a.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE account_id = ? AND secret_hash <> ?`), a.ID, keep.String())
		return err
	})
}
