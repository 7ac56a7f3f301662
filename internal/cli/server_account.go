package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cascade-update/cascade/internal/server/api"
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

// runServerAccountList prints the console accounts of the server in dir.
func runServerAccountList(ctx context.Context, dir, database string, asJSON bool, out io.Writer) error {
	st, err := openServerStore(ctx, dir, database)
	if err != nil {
		return err
	}
	defer st.Close()
	return accountList(ctx, st, asJSON, out)
}

func accountList(ctx context.Context, st store.Store, asJSON bool, out io.Writer) error {
	as, err := st.ListAccounts(ctx)
	if err != nil {
		return fmt.Errorf("admin list: %w", err)
	}
	type account struct {
		Name       string     `json:"name"`
		Role       string     `json:"role"`
		Created    time.Time  `json:"created"`
		LastSignIn *time.Time `json:"last_signin,omitempty"`
		Disabled   *time.Time `json:"disabled,omitempty"`
	}
	list := make([]account, len(as))
	for i, a := range as {
		list[i] = account{Name: a.Name, Role: string(a.Role), Created: a.Created, LastSignIn: api.TimePtr(a.LastSignIn), Disabled: api.TimePtr(a.Disabled)}
	}
	if asJSON {
		return printJSON(out, list)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tLAST SIGN-IN\tDISABLED")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.Role, a.Created.Format(time.RFC3339), timeOrDash(a.LastSignIn), timeOrDash(a.Disabled))
	}
	return tw.Flush()
}

// accountOptions are the flags of `cascade server admin disable|enable|passwd`.
type accountOptions struct {
	Data, Database, User string
}

func (o *accountOptions) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Data, "data", "", "server data directory (required)")
	cmd.Flags().StringVar(&o.Database, "database", "", "PostgreSQL URL instead of the configured database")
	cmd.Flags().StringVar(&o.User, "user", "", "the console account (required)")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("user")
}

func serverAccountDisable(disable bool) *cobra.Command {
	var o accountOptions
	use, short := "enable", "Enable a web console account again"
	if disable {
		use, short = "disable", "Disable a web console account: its sessions end at once"
	}
	cmd := &cobra.Command{
		Use:   use + " --data DIR --user NAME",
		Short: short,
		Long: short + `, in the database of the server in DIR (the server
may be running). The last enabled admin account cannot be disabled. The
change is recorded in the audit log (actor cli).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServerAccountDisable(cmd.Context(), o, disable, cmd.OutOrStdout())
		},
	}
	o.flags(cmd)
	return cmd
}

func runServerAccountDisable(ctx context.Context, o accountOptions, disable bool, out io.Writer) error {
	verb := "enable"
	if disable {
		verb = "disable"
	}
	st, err := openServerStore(ctx, o.Data, o.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	return accountDisable(ctx, st, o.User, disable, verb, out)
}

func accountDisable(ctx context.Context, st store.Store, user string, disable bool, verb string, out io.Writer) error {
	a, err := console.SetAccountDisabled(ctx, st, "cli", user, disable)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return usageError(fmt.Errorf("admin %s: no console account is called %q", verb, user))
	case errors.Is(err, store.ErrConflict):
		return usageError(fmt.Errorf("admin %s: %w", verb, err))
	case err != nil:
		return fmt.Errorf("admin %s: %w", verb, err)
	}
	fmt.Fprintf(out, "console account %s %sd\n", a.Name, verb)
	return nil
}

func serverAccountPasswd() *cobra.Command {
	var o accountOptions
	cmd := &cobra.Command{
		Use:   "passwd --data DIR --user NAME",
		Short: "Set a web console account's password",
		Long: `Passwd sets the password of a web console account in the database of the
server in DIR (the server may be running), without asking for the current
one: whoever runs it holds the server's database. The password is read as
by create (the terminal without echo, twice, or the first line of stdin).
Every session of the account ends. Recorded in the audit log (actor cli).
In the console, every account changes its own password at /password (the
current one required).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openServerStore(cmd.Context(), o.Data, o.Database)
			if err != nil {
				return err
			}
			defer st.Close()
			return accountPasswd(cmd.Context(), st, o.User, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	o.flags(cmd)
	return cmd
}

func accountPasswd(ctx context.Context, st store.Store, user string, in io.Reader, out io.Writer) error {
	if _, err := st.AccountByName(ctx, user); errors.Is(err, store.ErrNotFound) {
		return usageError(fmt.Errorf("admin passwd: no console account is called %q", user))
	} else if err != nil {
		return fmt.Errorf("admin passwd: %w", err)
	}
	password, err := readPassword(in, out)
	if err != nil {
		return usageError(fmt.Errorf("admin passwd: %w", err))
	}
	err = console.SetPassword(ctx, st, "cli", user, password, store.Hash{})
	switch {
	case errors.Is(err, console.ErrShortPassword):
		return usageError(fmt.Errorf("admin passwd: %w", err))
	case err != nil:
		return fmt.Errorf("admin passwd: %w", err)
	}
	fmt.Fprintf(out, "password of console account %s changed; its sessions have ended\n", user)
	return nil
}
