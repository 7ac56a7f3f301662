package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/server"
)

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		cmd := &cobra.Command{Use: "cert", Short: "Manage the server's TLS certificate"}
		var data string
		renew := &cobra.Command{
			Use:   "renew --data DIR",
			Short: "Replace the self-signed certificate by a new one with the same key",
			Long: `Renew writes a new self-signed certificate for the server in DIR: the same
names, the same key, valid for ten years from now. Endpoints and the admin
CLI pin the key (its fingerprint, which renew prints, does not change), so
nothing needs to be enrolled again. Restart the server to serve it.

Endpoints enrolled by a version that pinned the certificate instead switch
to the key's fingerprint at their first call to the server: renew once all
of them have run with this version (docs/security.md). A certificate an
authority issued (--tls-cert at init) is refused: renew it with that
authority, for the same key.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runServerCertRenew(data, time.Now(), cmd.OutOrStdout())
			},
		}
		renew.Flags().StringVar(&data, "data", "", "server data directory (required)")
		renew.MarkFlagRequired("data")
		cmd.AddCommand(renew)
		return cmd
	})
}

func runServerCertRenew(data string, now time.Time, out io.Writer) error {
	res, err := server.RenewCert(data, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "renewed the certificate of %s, valid until %s\n  fingerprint: %s (the key's, unchanged)\nrestart the server to serve it\n",
		data, res.NotAfter.UTC().Format(time.DateOnly), res.Fingerprint)
	return nil
}
