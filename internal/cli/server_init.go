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
	Listen     string
	URL        string
	Database   string
	Proxy      string
	TLSCert    string
	TLSKey     string
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
		f.StringVar(&o.Listen, "listen", ":8443", "address to serve HTTPS on")
		f.StringVar(&o.URL, "url", "", "base URL endpoints reach the server at (default https://HOSTNAME:PORT/)")
		f.StringVar(&o.Database, "database", "", "PostgreSQL URL (postgres://...); default SQLite in DIR")
		f.StringVar(&o.Proxy, "proxy", "", "HTTP proxy to reach the origin through")
		f.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate to serve instead of a generated one")
		f.StringVar(&o.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
		return cmd
	})
}

func runServerInit(o serverInitOptions, out io.Writer) error {
	if o.Origin == "" || o.VendorRoot == "" {
		return usageError(errors.New("server init: --origin and --vendor-root are required"))
	}
	if err := checkServerURLFlags(o.Database, o.Proxy); err != nil {
		return err
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return usageError(errors.New("server init: --tls-cert and --tls-key go together"))
	}
	root, err := os.ReadFile(o.VendorRoot)
	if err != nil {
		return usageError(fmt.Errorf("server init: vendor root: %w", err))
	}
	res, err := server.Init(o.Dir, server.InitOptions{VendorRoot: root, Now: time.Now, Config: server.Config{
		Listen: o.Listen, URL: o.URL, Origin: o.Origin, Database: o.Database, Proxy: o.Proxy, TLSCert: o.TLSCert, TLSKey: o.TLSKey}})
	if err != nil {
		return usageError(err)
	}
	fmt.Fprintf(out, "created server in %s\n  url:         %s\n  origin:      %s\n  fingerprint: %s\n  vendor root: %s\n",
		o.Dir, res.Config.URL, res.Config.Origin, res.Fingerprint, trust.RootSHA256(root))
	fmt.Fprintf(out, "next: cascade server admin create --data %s, then cascade server run --data %s\n", o.Dir, o.Dir)
	return nil
}
