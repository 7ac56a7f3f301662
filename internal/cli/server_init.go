package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/trust"
)

// serverInitOptions are the arguments of `cascade server init`.
type serverInitOptions struct {
	Dir        string
	Origin     string
	VendorRoot string
	Database   string
	serverProcessOptions
}

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		var o serverInitOptions
		cmd := &cobra.Command{
			Use:   "init DIR --origin URL --vendor-root ROOT.json",
			Short: "Create a server data directory: configuration, site repository keys, certificate",
			Long: `Init creates DIR (missing or empty): server.json, the site repository with new
signing keys (DIR/site/keys, 0600), the mirror's trust store anchored at the
vendor root (obtained from the vendor out of band), and a self-signed ECDSA
certificate for the listen address and server URL unless --tls-cert and
--tls-key are given. It prints the fingerprint of the certificate's key:
endpoints pin it at enrollment (it survives ` + "`cascade server cert renew`" + `). The database (SQLite in DIR, or --database) is created and
migrated when the server first runs.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Dir = args[0]
				return runServerInit(o, cmd.OutOrStdout())
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.Origin, "origin", "", "base URL of the vendor origin to mirror (required)")
		f.StringVar(&o.VendorRoot, "vendor-root", "", "the vendor repository's trusted root.json (required)")
		f.StringVar(&o.Database, "database", "", "PostgreSQL URL (postgres://...); default SQLite in DIR")
		o.addFlags(f, "the server")
		return cmd
	})
}

func runServerInit(o serverInitOptions, out io.Writer) error {
	if o.Origin == "" || o.VendorRoot == "" {
		return usageError(errors.New("server init: --origin and --vendor-root are required"))
	}
	if err := o.check("server init", o.Database); err != nil {
		return err
	}
	root, err := os.ReadFile(o.VendorRoot)
	if err != nil {
		return usageError(fmt.Errorf("server init: vendor root: %w", err))
	}
	cfg := o.config()
	cfg.Origin, cfg.Database = o.Origin, o.Database
	res, err := server.Init(o.Dir, server.InitOptions{VendorRoot: root, Now: time.Now, Config: cfg})
	if err != nil {
		return usageError(err)
	}
	fmt.Fprintf(out, "created server in %s\n  url:         %s\n  origin:      %s\n  fingerprint: %s\n  vendor root: %s\n",
		o.Dir, res.Config.URL, res.Config.Origin, res.Fingerprint, trust.RootSHA256(root))
	fmt.Fprintf(out, "next: cascade server admin create --data %s, then cascade server run --data %s\n", o.Dir, o.Dir)
	return nil
}
