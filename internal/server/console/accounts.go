package console

import (
	"context"
	"errors"
	"fmt"

	"github.com/cascade-update/cascade/internal/store"
)

// Account management: the changes the accounts page and `cascade server
// admin disable|enable|passwd` make, each recorded in the audit log, in
// the change's own transaction, with its actor ("account:NAME" from the console, "cli" from the CLI). The
// store keeps an enabled admin account (ErrConflict otherwise); an
// account cannot disable itself or change its own role.

// ErrSelf refuses an account's change to itself that only another admin
// may make.
var ErrSelf = errors.New("an account cannot disable itself or change its own role: ask another admin")

// ErrWrongPassword refuses a password change whose old password is wrong.
var ErrWrongPassword = errors.New("the current password is wrong")

func isSelf(actor, name string) bool { return actor == "account:"+name }

// audited returns ctx carrying e: the store writes it in the
// transaction of the change made with ctx (both or neither).
func audited(ctx context.Context, e store.AuditEntry) context.Context {
	return store.WithAudit(ctx, store.NewAudit(e))
}

// SetAccountDisabled disables the account called name (its sessions end
// at once) or enables it again, as actor.
func SetAccountDisabled(ctx context.Context, st store.Store, actor, name string, disabled bool) (store.Account, error) {
	verb, kind := "enable", "account.enable"
	if disabled {
		verb, kind = "disable", "account.disable"
		if isSelf(actor, name) {
			return store.Account{}, fmt.Errorf("disable account %s: %w", name, ErrSelf)
		}
	}
	summary := fmt.Sprintf("console account %s %sd", name, verb)
	if disabled {
		summary += " (its sessions ended)"
	}
	ctx = audited(ctx, store.AuditEntry{Actor: actor, Kind: kind, Target: name, Summary: summary})
	return st.SetAccountDisabled(ctx, name, disabled)
}

// SetAccountRole gives the account called name role, as actor.
func SetAccountRole(ctx context.Context, st store.Store, actor, name string, role store.AccountRole) (store.Account, error) {
	if isSelf(actor, name) {
		return store.Account{}, fmt.Errorf("set role of account %s: %w", name, ErrSelf)
	}
	before, err := st.AccountByName(ctx, name)
	if err != nil {
		return store.Account{}, err
	}
	ctx = audited(ctx, store.AuditEntry{Actor: actor, Kind: "account.role", Target: name,
		Summary: fmt.Sprintf("console account %s: role %s (was %s)", name, role, before.Role),
		Before:  string(before.Role), After: string(role)})
	return st.SetAccountRole(ctx, name, role)
}

// ChangePassword sets the password of the account called name to
// password (at least MinPasswordLen characters) after checking its
// current one, old, and ends its other sessions (keep is the session
// making the change).
func ChangePassword(ctx context.Context, st store.Store, name, old, password string, keep store.Hash) error {
	a, err := st.AccountByName(ctx, name)
	if err != nil {
		return err
	}
	ok, err := VerifyPassword(a.PasswordHash, old)
	if err != nil {
		return fmt.Errorf("change password of %s: %w", name, err)
	}
	if !ok {
		return fmt.Errorf("change password of %s: %w", name, ErrWrongPassword)
	}
	return SetPassword(ctx, st, "account:"+name, name, password, keep)
}

// SetPassword sets the password of the account called name, as actor,
// ending every session of the account but keep, without asking for the
// current one (ChangePassword asks; the CLI, run by whoever holds the
// server's database, does not).
func SetPassword(ctx context.Context, st store.Store, actor, name, password string, keep store.Hash) error {
	hash, err := HashPassword(password)
	if err != nil {
		return fmt.Errorf("change password of %s: %w", name, err)
	}
	ctx = audited(ctx, store.AuditEntry{Actor: actor, Kind: "account.password", Target: name,
		Summary: fmt.Sprintf("console account %s: password changed (its other sessions ended)", name)})
	_, err = st.SetAccountPassword(ctx, name, hash, keep)
	return err
}
