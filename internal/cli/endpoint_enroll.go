package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/server/api"
)

func init() {
	endpointCommands = append(endpointCommands, func() *cobra.Command {
		var o endpoint.EnrollOptions
		var tokenFlag, tokenFile, vendorRootFile string
		var servers, fingerprints []string
		cmd := &cobra.Command{
			Use:   "enroll --server URL --token-file FILE --fingerprint F --vendor-root-sha256 HASH --config FILE",
			Short: "Enroll this endpoint with a management server and write its configuration",
			Long: `Enroll registers the endpoint with the server (an enrollment token from
` + "`cascade server token create`" + `, read from --token-file or
$CASCADE_ENROLL_TOKEN, never from the command line), pinning the server's key by the
fingerprint the server printed. It writes the endpoint credential (0600), the
trusted vendor and site roots, the current policy and the agent directory into
the data directory, and FILE, the configuration ` + "`cascade endpoint run`" + ` uses.
From then on the endpoint resolves "server" to the server, "agent:ID" through
the server's agent directory, installs the policy signed by the server, and
uploads a report after each run.

The server sends the vendor root, which decides whose signatures the
endpoint accepts on components: enrollment checks it against the vendor's
root.json (--vendor-root FILE) or its hash (--vendor-root-sha256, printed by
` + "`cascade origin init`, `origin status` and `server status`" + `), brought out of
band, and refuses a different one. --trust-server-vendor-root skips the
check (docs/security.md).

A site with several management servers: give --server once per server, in
the order the endpoint uses them (it enrolls with the first and fails over
to the next), and --fingerprint for each server key you hold; the endpoint
also pins the keys of the site's servers that the server answers with
(docs/server.md, "Endpoints with several server URLs").`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := refuseSecretFlag("token", tokenFlag, "--token-file FILE or $CASCADE_ENROLL_TOKEN"); err != nil {
					return err
				}
				tok, err := readSecret("enrollment token", "CASCADE_ENROLL_TOKEN", tokenFile, "")
				if err != nil {
					return err
				}
				if tok == "" {
					return usageError(errors.New("no enrollment token: give --token-file FILE or $CASCADE_ENROLL_TOKEN (`cascade server token create` makes one)"))
				}
				o.Token = tok
				if vendorRootFile != "" {
					if o.VendorRoot, err = os.ReadFile(vendorRootFile); err != nil {
						return usageError(fmt.Errorf("enroll: vendor root: %w", err))
					}
				}
				if o.VendorRootChecks() != 1 {
					return usageError(fmt.Errorf("enroll: %w", endpoint.ErrVendorRootCheck))
				}
				o.Server, o.OtherServers = servers[0], servers[1:]
				for _, u := range servers {
					if err := api.CheckServerURL(u); err != nil {
						return usageError(fmt.Errorf("enroll: %w", err))
					}
				}
				if len(fingerprints) > 0 {
					o.Fingerprint, o.OtherFingerprints = fingerprints[0], fingerprints[1:]
				}
				return runEndpointEnroll(cmd.Context(), o, cmd.OutOrStdout())
			},
		}
		f := cmd.Flags()
		f.StringArrayVar(&servers, "server", nil, "server base URL, https:// (required; repeat it for each server of a site with several, in the order they are used)")
		refusedSecretFlag(f, "token", &tokenFlag)
		f.StringVar(&tokenFile, "token-file", "", "file holding the enrollment token (default: $CASCADE_ENROLL_TOKEN holds the token itself)")
		f.StringArrayVar(&fingerprints, "fingerprint", nil, "SHA-256 fingerprint of the server's key (printed by server init and server status; repeatable: the keys of the site's servers); none: verify its certificate with the system roots")
		f.StringVar(&o.Config, "config", "", "configuration file to write (required)")
		f.StringVar(&o.DataDir, "data-dir", "", "data directory (default: data next to --config)")
		f.StringVar(&o.Hostname, "hostname", "", "name of this endpoint (default: the host name)")
		f.StringVar(&o.Role, "role", "", "client (default) or agent (needs a token created with --agents)")
		f.StringVar(&o.AgentID, "agent-id", "", "the agent id, with --role agent")
		f.StringVar(&o.AgentURL, "agent-url", "", "the base URL the agent serves at, with --role agent")
		f.StringSliceVar(&o.Addresses, "address", nil, "an address of this endpoint (repeatable; default: its interfaces')")
		f.BoolVar(&o.Force, "force", false, "replace an existing configuration and enrollment")
		f.StringVar(&vendorRootFile, "vendor-root", "", "the vendor's trusted root.json, obtained out of band: the server's must be the same")
		f.StringVar(&o.VendorRootSHA256, "vendor-root-sha256", "", "the SHA-256 of the vendor's trusted root.json (cascade origin status prints it): the server's must match")
		f.BoolVar(&o.TrustServerVendorRoot, "trust-server-vendor-root", false,
			"accept the server's vendor root unchecked: gives up the guarantee that a compromised server (or whoever holds its TLS key) cannot make this endpoint install components of its own making")
		for _, name := range []string{"server", "config"} {
			cmd.MarkFlagRequired(name)
		}
		return cmd
	})
}

func runEndpointEnroll(ctx context.Context, o endpoint.EnrollOptions, out io.Writer) error {
	res, err := endpoint.Enroll(ctx, o)
	if err != nil {
		return unreachableHint(err)
	}
	fmt.Fprintf(out, "enrolled as %s in domain %s\nconfiguration: %s\ndata: %s\nnext: cascade endpoint run --config %s\n",
		res.EndpointID, res.Domain, res.Config, res.DataDir, res.Config)
	return nil
}
