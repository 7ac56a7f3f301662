package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/endpoint"
)

func init() {
	endpointCommands = append(endpointCommands, func() *cobra.Command {
		var o endpoint.EnrollOptions
		cmd := &cobra.Command{
			Use:   "enroll --server URL --token T --fingerprint F --config FILE",
			Short: "Enroll this endpoint with a management server and write its configuration",
			Long: `Enroll registers the endpoint with the server (an enrollment token from
` + "`cascade server token create`" + `), pinning the server's certificate by the
fingerprint the server printed. It writes the endpoint credential (0600), the
trusted vendor and site roots, the current policy and the agent directory into
the data directory, and FILE, the configuration ` + "`cascade endpoint run`" + ` uses.
From then on the endpoint resolves "server" to the server, "agent:ID" through
the server's agent directory, installs the policy signed by the server, and
uploads a report after each run.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runEndpointEnroll(cmd.Context(), o, cmd.OutOrStdout())
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.Server, "server", "", "server base URL (required)")
		f.StringVar(&o.Token, "token", "", "enrollment token (required)")
		f.StringVar(&o.Fingerprint, "fingerprint", "", "SHA-256 fingerprint of the server certificate (printed by the server); empty: verify it with the system roots")
		f.StringVar(&o.Config, "config", "", "configuration file to write (required)")
		f.StringVar(&o.DataDir, "data-dir", "", "data directory (default: data next to --config)")
		f.StringVar(&o.Hostname, "hostname", "", "name of this endpoint (default: the host name)")
		f.StringVar(&o.Role, "role", "", "client (default) or agent (needs a token created with --agents)")
		f.StringVar(&o.AgentID, "agent-id", "", "the agent id, with --role agent")
		f.StringVar(&o.AgentURL, "agent-url", "", "the base URL the agent serves at, with --role agent")
		f.StringSliceVar(&o.Addresses, "address", nil, "an address of this endpoint (repeatable; default: its interfaces')")
		f.BoolVar(&o.Force, "force", false, "replace an existing configuration and enrollment")
		for _, name := range []string{"server", "token", "config"} {
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
