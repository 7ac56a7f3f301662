package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/server"
)

// serverJoinOptions are the arguments of `cascade server join`.
type serverJoinOptions struct {
	Dir       string
	Database  string
	KeySecret string
	serverProcessOptions
}

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		var o serverJoinOptions
		cmd := &cobra.Command{
			Use:   "join --data DIR --database URL --key-secret FILE",
			Short: "Create the data directory of another server process on a running server's PostgreSQL database",
			Long: `Join creates DIR (missing or empty) for one more server process sharing the
PostgreSQL database of running ones, and nothing else: the origin, the vendor
root and the site repository's settings come from the database; the site
repository's newest signed state is copied from it and verified; the site
keys stay sealed in it, opened when this process becomes the writer with the
key secret given by --key-secret (the file DIR/key-secret of the first
server; it is copied into DIR, 0600). The process gets its own certificate
(or --tls-cert and --tls-key) and listens on --listen. Start it with
` + "`cascade server run --data DIR`" + ` (docs/server.md, Several server processes).`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runServerJoin(cmd.Context(), o, cmd.OutOrStdout())
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.Dir, "data", "", "the new data directory (required)")
		f.StringVar(&o.Database, "database", "", "the running servers' PostgreSQL URL (required)")
		f.StringVar(&o.KeySecret, "key-secret", "", "the key secret file of the first server (required)")
		o.addFlags(f, "this process")
		return cmd
	})
}

func runServerJoin(ctx context.Context, o serverJoinOptions, out io.Writer) error {
	if o.Dir == "" || o.Database == "" || o.KeySecret == "" {
		return usageError(errors.New("server join: --data, --database and --key-secret are required"))
	}
	if err := o.check("server join", o.Database); err != nil {
		return err
	}
	secret, err := os.ReadFile(o.KeySecret)
	if err != nil {
		return usageError(fmt.Errorf("server join: key secret: %w", err))
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cfg := o.config()
	cfg.Database = o.Database
	res, err := server.Join(ctx, o.Dir, server.JoinOptions{KeySecret: secret, Now: time.Now, Config: cfg})
	if err != nil {
		return usageError(err)
	}
	fmt.Fprintf(out, "joined the server processes in %s\n  url:          %s\n  origin:       %s\n  fingerprint:  %s\n  site version: %d\n  site root:    %s\n",
		o.Dir, res.Config.URL, res.Config.Origin, res.Fingerprint, res.SiteVersion, res.SiteRootSHA256)
	fmt.Fprintf(out, "next: cascade server run --data %s (endpoints pin this process's fingerprint too)\n", o.Dir)
	return nil
}
