package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// serverAdminCreateOptions are the flags of `cascade server admin create`.
type serverAdminCreateOptions struct {
	Data     string
	Database string
	Name     string
	Out      string
	User     string // a console account instead of a token
	Viewer   bool
}

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		cmd := &cobra.Command{Use: "admin", Short: "Create, list and revoke admin tokens; manage web console accounts"}
		var c serverAdminCreateOptions
		create := &cobra.Command{
			Use:   "create --data DIR [--name NAME | --user NAME [--viewer]]",
			Short: "Create an admin token (printed once) or a web console account",
			Long: `Create makes an admin token in the database of the server in DIR (the server may
be running) and prints it once: the server keeps only its hash. Use it to
make the first token; later ones can also be made through the API.

With --user NAME it makes a web console account instead (role admin, or
viewer with --viewer: read only). The password is read from the terminal
without echo, or as the first line of stdin when stdin is not a terminal;
it needs at least 12 characters and is stored as an argon2id hash.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runServerAdminCreate(cmd.Context(), c, cmd.InOrStdin(), cmd.OutOrStdout())
			},
		}
		create.Flags().StringVar(&c.Data, "data", "", "server data directory (required)")
		create.Flags().StringVar(&c.Database, "database", "", "PostgreSQL URL instead of the configured database")
		create.Flags().StringVar(&c.Name, "name", "admin", "what or who the token is for")
		create.Flags().StringVar(&c.Out, "out", "", "also write the token to this new file (created 0600; an existing file is refused)")
		create.Flags().StringVar(&c.User, "user", "", "make a web console account with this name instead of a token")
		create.Flags().BoolVar(&c.Viewer, "viewer", false, "with --user: the account may look but not change anything")
		create.MarkFlagRequired("data")
		cmd.AddCommand(create, serverAdminList(), serverAdminRevoke(), serverAccountDisable(true), serverAccountDisable(false),
			serverAccountPasswd())
		return cmd
	})
}

func runServerAdminCreate(ctx context.Context, o serverAdminCreateOptions, in io.Reader, out io.Writer) error {
	if err := checkServerURLFlags(o.Database, ""); err != nil {
		return err
	}
	if o.Viewer && o.User == "" {
		return usageError(fmt.Errorf("admin create: --viewer needs --user"))
	}
	if o.Out != "" {
		if o.User != "" {
			return usageError(fmt.Errorf("admin create: --out writes a token; an account (--user) has a password instead"))
		}
		// Checked before the token exists; createSecretFile checks again.
		if _, err := os.Lstat(o.Out); err == nil {
			return usageError(fmt.Errorf("admin create: %s exists; remove it or choose another --out (the token file is created anew, 0600)", o.Out))
		}
	}
	st, err := openServerStore(ctx, o.Data, o.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	if o.User != "" {
		return runServerAccountCreate(ctx, st, o, in, out)
	}
	// The entry is written in the transaction that creates the token.
	audit := store.NewAudit(store.AuditEntry{Actor: "cli", Kind: "admin-token.create", Summary: fmt.Sprintf("admin token (%s)", o.Name)})
	t, secret, err := server.CreateAdminToken(store.WithAudit(ctx, audit), st, o.Name)
	if err != nil {
		return usageError(err)
	}
	fmt.Fprintf(out, "admin token %s (%s), shown once:\n%s\n", t.ID, t.Name, secret)
	if o.Out != "" {
		if err := atomicfile.WriteNew(o.Out, []byte(secret+"\n"), 0o600); err != nil {
			return fmt.Errorf("admin create: token %s was made (printed above), but writing it failed: %w", t.ID, err)
		}
	}
	if e, ok := audit.Written(); ok {
		e.Target, e.Summary = t.ID, fmt.Sprintf("admin token %s (%s)", t.ID, t.Name)
		if err := st.AmendAudit(ctx, e); err != nil {
			return fmt.Errorf("admin create: token %s made and recorded in the audit log, but adding its id to the entry failed: %w", t.ID, err)
		}
	}
	return nil
}

// openServerStore opens the database of the server in dir (database, when
// set, instead of the configured one).
func openServerStore(ctx context.Context, dir, database string) (store.Store, error) {
	if dir == "" {
		return nil, usageError(fmt.Errorf("--data is required"))
	}
	if err := checkServerURLFlags(database, ""); err != nil {
		return nil, err
	}
	cfg, err := server.LoadConfig(dir)
	if err != nil {
		return nil, usageError(err)
	}
	if database != "" {
		cfg.Database = database
	}
	return store.Open(ctx, cfg.DSN(dir), store.Options{})
}

func serverAdminList() *cobra.Command {
	var c adminConn
	var accounts bool
	var database string
	cmd := &cobra.Command{
		Use:   "list [--accounts --data DIR]",
		Short: "List admin tokens, or the web console's accounts",
		Long: `List lists the admin tokens through the API. With --accounts it lists the web
console's accounts instead (name, role, created, last sign-in, disabled),
read from the database of the server in --data (the server may be running).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if accounts {
				return runServerAccountList(cmd.Context(), c.Data, database, c.JSON, cmd.OutOrStdout())
			}
			var ts []api.AdminToken
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/admin-tokens", nil, nil, &ts); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), ts)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tREVOKED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Created.Format(time.RFC3339), timeOrDash(t.Revoked))
			}
			return tw.Flush()
		},
	}
	c.flags(cmd.Flags())
	cmd.Flags().BoolVar(&accounts, "accounts", false, "list the web console's accounts (needs --data) instead of admin tokens")
	cmd.Flags().StringVar(&database, "database", "", "with --accounts: PostgreSQL URL instead of the configured database")
	return cmd
}

func serverAdminRevoke() *cobra.Command {
	var c adminConn
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an admin token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), http.MethodDelete, "/api/v1/admin-tokens/"+pathEscape(args[0]), nil, nil, nil)
		},
	}
	c.flags(cmd.Flags())
	return cmd
}

// timeOrDash formats an optional time for tables.
func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}
