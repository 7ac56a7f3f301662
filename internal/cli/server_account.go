package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

// runServerAccountCreate makes a console account (`cascade server admin
// create --user NAME [--viewer]`): the password is read from the terminal
// without echo (twice), or as the first line of stdin when it is not a
// terminal. The creation is recorded in the audit log with actor "cli".
func runServerAccountCreate(ctx context.Context, st store.Store, o serverAdminCreateOptions, in io.Reader, out io.Writer) error {
	role := store.AccountAdmin
	if o.Viewer {
		role = store.AccountViewer
	}
	if !store.ValidAccountName(o.User) {
		return usageError(fmt.Errorf("admin create: account name %q must be 1-64 letters, digits, '.', '_', '-' or '@'", o.User))
	}
	password, err := readPassword(in, out)
	if err != nil {
		return usageError(err)
	}
	hash, err := console.HashPassword(password)
	if err != nil {
		return usageError(fmt.Errorf("admin create: %w", err))
	}
	// The entry is written in the transaction that creates the account.
	ctx = store.WithAudit(ctx, store.NewAudit(store.AuditEntry{Actor: "cli", Kind: "account.create", Target: o.User,
		Summary: fmt.Sprintf("console account %s (%s) created", o.User, role)}))
	a, err := st.CreateAccount(ctx, store.Account{Name: o.User, Role: role, PasswordHash: hash})
	if errors.Is(err, store.ErrConflict) {
		return usageError(fmt.Errorf("admin create: an account called %q exists already", o.User))
	}
	if err != nil {
		return fmt.Errorf("admin create: %w", err)
	}
	fmt.Fprintf(out, "console account %s created (role %s)\n", a.Name, a.Role)
	return nil
}

// readPassword reads a password: from the terminal without echo, asked
// twice, or the first line of in when in is not a terminal.
func readPassword(in io.Reader, out io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(out, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(out)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(out, "Password again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(out)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(p1) != string(p2) {
			return "", errors.New("read password: the two passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("read password: stdin is empty (give the password as its first line)")
	}
	return line, nil
}
