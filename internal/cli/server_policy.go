package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
)

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		cmd := &cobra.Command{Use: "policy", Short: "Show and replace the update-source policy"}
		cmd.AddCommand(serverPolicyGet(), serverPolicySet(), serverPolicyHistory(), serverPolicyLint(), serverPolicyPreview(), serverPolicyWhatIf())
		return cmd
	})
}

func serverPolicyGet() *cobra.Command {
	var c adminConn
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print the current policy (YAML; with --json, its version and author too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p api.Policy
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/policy", nil, nil, &p); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), p)
			}
			_, err := io.WriteString(cmd.OutOrStdout(), p.Document)
			return err
		},
	}
	c.flags(cmd.Flags())
	return cmd
}

// serverPolicySetOptions are the flags of `cascade server policy set`.
type serverPolicySetOptions struct {
	adminConn
	File      string
	IfVersion int64
}

func serverPolicySet() *cobra.Command {
	var o serverPolicySetOptions
	cmd := &cobra.Command{
		Use:   "set FILE",
		Short: "Replace the policy: validated as `cascade explain` does, then signed and published",
		Long: `Set sends FILE to the server, which validates it exactly as ` + "`cascade explain`" + ` does
(an invalid policy exits with status 2 and the same line), stores it as the
next version and re-signs the site repository's policy document.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			return runServerPolicySet(cmd, o, cmd.OutOrStdout())
		},
	}
	o.flags(cmd.Flags())
	cmd.Flags().Int64Var(&o.IfVersion, "if-version", -1, "replace only if the current version is this one")
	return cmd
}

func runServerPolicySet(cmd *cobra.Command, o serverPolicySetOptions, out io.Writer) error {
	data, err := os.ReadFile(o.File)
	if err != nil {
		return usageError(fmt.Errorf("load policy: %w", err))
	}
	req := api.PutPolicy{Document: string(data)}
	if o.IfVersion >= 0 {
		req.IfVersion = &o.IfVersion
	}
	cl, err := o.client()
	if err != nil {
		return err
	}
	var res api.PolicyResult
	if err := cl.Call(cmd.Context(), http.MethodPut, "/api/v1/policy", nil, req, &res); err != nil {
		var se *api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusUnprocessableEntity {
			// The same line as `cascade explain --policy FILE`.
			return usageError(fmt.Errorf("policy %s: %s", o.File, se.Message))
		}
		return apiError(err)
	}
	if o.JSON {
		return printJSON(out, res)
	}
	fmt.Fprintf(out, "policy version %d stored and published (site timestamp %d)\n", res.Policy.Version, res.Published.Timestamp)
	return nil
}

func serverPolicyHistory() *cobra.Command {
	var c adminConn
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the policy versions, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []api.Policy
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/policy/history", q, nil, &ps); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), ps)
			}
			for _, p := range ps {
				n := "?"
				if pp, err := policy.Parse([]byte(p.Document)); err == nil {
					n = fmt.Sprint(len(pp.CustomSources))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d\t%s\t%s\t%s custom sources\n", p.Version, p.Created.Format("2006-01-02 15:04:05"), p.Author, n)
			}
			return nil
		},
	}
	c.flags(cmd.Flags())
	cmd.Flags().IntVar(&limit, "limit", 20, "how many versions")
	return cmd
}
