package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		cmd := &cobra.Command{Use: "keys", Short: "List and forget the server keys recorded in the database",
			Long: `Each server process records its TLS key fingerprint in the database when it
starts; every process answers enrollment and status requests with all the
recorded keys (and its peer_keys), so endpoints pin each process of the site.
A key stays recorded until it is forgotten: forget the key of a process you
removed for good (a process that starts again records its key again).`}
		var data, database string
		var asJSON bool
		list := &cobra.Command{
			Use:   "list --data DIR",
			Short: "List the recorded server keys",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runServerKeys(cmd.Context(), data, database, func(cl store.Cluster) error {
					return serverKeysList(cmd.Context(), cl, asJSON, cmd.OutOrStdout())
				})
			},
		}
		list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		forget := &cobra.Command{
			Use:   "forget --data DIR FINGERPRINT",
			Short: "Forget a recorded server key (of a process removed for good)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				fp, err := api.ParseFingerprint(args[0])
				if err != nil {
					return usageError(fmt.Errorf("keys forget: %w", err))
				}
				return runServerKeys(cmd.Context(), data, database, func(cl store.Cluster) error {
					audit := store.NewAudit(store.AuditEntry{Actor: "cli", Kind: "server-key.forget", Target: fp.String(),
						Summary: "forgot server key " + fp.String()})
					err := cl.ForgetServerKey(store.WithAudit(cmd.Context(), audit), fp.String())
					if errors.Is(err, store.ErrNotFound) {
						return usageError(fmt.Errorf("keys forget: no server key %s is recorded", fp))
					}
					if err == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "forgot server key %s\n", fp)
					}
					return err
				})
			},
		}
		for _, c := range []*cobra.Command{list, forget} {
			c.Flags().StringVar(&data, "data", "", "server data directory (required)")
			c.Flags().StringVar(&database, "database", "", "PostgreSQL URL instead of the configured database")
			c.MarkFlagRequired("data")
		}
		cmd.AddCommand(list, forget)
		return cmd
	})
}

// runServerKeys opens the database of the server in dir and calls fn
// with it.
func runServerKeys(ctx context.Context, dir, database string, fn func(store.Cluster) error) error {
	st, err := openServerStore(ctx, dir, database)
	if err != nil {
		return err
	}
	defer st.Close()
	cl, ok := store.ClusterOf(st)
	if !ok {
		return fmt.Errorf("server keys: the database records no server keys")
	}
	return fn(cl)
}

func serverKeysList(ctx context.Context, cl store.Cluster, asJSON bool, out io.Writer) error {
	ks, err := cl.ServerKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys list: %w", err)
	}
	type key struct {
		Fingerprint string    `json:"fingerprint"`
		URL         string    `json:"url"`
		Recorded    time.Time `json:"recorded"`
	}
	list := make([]key, len(ks))
	for i, k := range ks {
		list[i] = key{Fingerprint: k.Fingerprint, URL: k.URL, Recorded: k.Recorded}
	}
	if asJSON {
		return printJSON(out, list)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FINGERPRINT\tURL\tRECORDED")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Fingerprint, k.URL, k.Recorded.Format(time.RFC3339))
	}
	return tw.Flush()
}
