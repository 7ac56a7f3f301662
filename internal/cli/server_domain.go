package cli

import (
	"fmt"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/server/api"
)

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		cmd := &cobra.Command{Use: "domain", Short: "Manage domains, their settings documents and program approvals"}
		cmd.AddCommand(serverDomainList(), serverDomainCreate(), serverDomainDelete(), serverDomainSettings(),
			serverDomainSetSettings(), serverDomainApprove(), serverDomainWithdraw(), serverDomainApprovals())
		return cmd
	})
}

// adminCommand builds a subcommand that calls the API through run with
// the connection flags registered.
func adminCommand(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, c *adminConn, args []string) error) *cobra.Command {
	var c adminConn
	cmd := &cobra.Command{Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, a []string) error { return run(cmd, &c, a) }}
	c.flags(cmd.Flags())
	return cmd
}

func serverDomainList() *cobra.Command {
	return adminCommand("list", "List domains", cobra.NoArgs, func(cmd *cobra.Command, c *adminConn, _ []string) error {
		var ds []api.Domain
		if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/domains", nil, nil, &ds); err != nil {
			return err
		}
		if c.JSON {
			return printJSON(cmd.OutOrStdout(), ds)
		}
		for _, d := range ds {
			fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", d.Name, d.Created.Format(time.RFC3339))
		}
		return nil
	})
}

func serverDomainCreate() *cobra.Command {
	return adminCommand("create NAME", "Create a domain", cobra.ExactArgs(1), func(cmd *cobra.Command, c *adminConn, args []string) error {
		return c.call(cmd.Context(), http.MethodPost, "/api/v1/domains", nil, api.Domain{Name: args[0]}, nil)
	})
}

func serverDomainDelete() *cobra.Command {
	return adminCommand("delete NAME", "Delete a domain that holds no endpoints or tokens", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *adminConn, args []string) error {
			return c.call(cmd.Context(), http.MethodDelete, "/api/v1/domains/"+pathEscape(args[0]), nil, nil, nil)
		})
}

func serverDomainSettings() *cobra.Command {
	return adminCommand("settings NAME", "Print a domain's settings document", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *adminConn, args []string) error {
			var s api.Settings
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/domains/"+pathEscape(args[0])+"/settings", nil, nil, &s); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), s)
			}
			return printJSON(cmd.OutOrStdout(), s.Document)
		})
}

func serverDomainSetSettings() *cobra.Command {
	return adminCommand("set-settings NAME FILE", "Replace a domain's settings document (a JSON object), then sign and publish it",
		cobra.ExactArgs(2), func(cmd *cobra.Command, c *adminConn, args []string) error {
			data, err := os.ReadFile(args[1])
			if err != nil {
				return usageError(err)
			}
			var s api.Settings
			if err := c.call(cmd.Context(), http.MethodPut, "/api/v1/domains/"+pathEscape(args[0])+"/settings", nil, rawJSON(data), &s); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "settings of domain %s: version %d published\n", s.Domain, s.Version)
			return nil
		})
}

// rawJSON is a request body sent as is.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

func serverDomainApprove() *cobra.Command {
	return adminCommand("approve DOMAIN PROGRAM VERSION", "Approve a program version for a domain (it must be mirrored)",
		cobra.ExactArgs(3), func(cmd *cobra.Command, c *adminConn, args []string) error {
			path := "/api/v1/domains/" + pathEscape(args[0]) + "/programs/" + pathEscape(args[1])
			return c.call(cmd.Context(), http.MethodPut, path, nil, api.Deploy{Version: args[2]}, nil)
		})
}

func serverDomainWithdraw() *cobra.Command {
	return adminCommand("withdraw DOMAIN PROGRAM", "Withdraw a domain's program approval", cobra.ExactArgs(2),
		func(cmd *cobra.Command, c *adminConn, args []string) error {
			path := "/api/v1/domains/" + pathEscape(args[0]) + "/programs/" + pathEscape(args[1])
			return c.call(cmd.Context(), http.MethodDelete, path, nil, nil, nil)
		})
}

func serverDomainApprovals() *cobra.Command {
	return adminCommand("approvals DOMAIN", "List a domain's program approvals", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *adminConn, args []string) error {
			var as []api.Approval
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/domains/"+pathEscape(args[0])+"/programs", nil, nil, &as); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), as)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROGRAM\tVERSION\tAPPROVED")
			for _, a := range as {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Program, a.Version, a.Approved.Format(time.RFC3339))
			}
			return tw.Flush()
		})
}
