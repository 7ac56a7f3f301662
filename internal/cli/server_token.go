package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/server/api"
)

// serverTokenCreateOptions are the flags of `cascade server token create`.
type serverTokenCreateOptions struct {
	adminConn
	Domain  string
	Uses    int
	Expires time.Duration
}

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke enrollment tokens"}
		var o serverTokenCreateOptions
		create := &cobra.Command{
			Use:   "create --domain D [--uses N] [--expires DURATION]",
			Short: "Create an enrollment token (single use by default), printed once",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runServerTokenCreate(cmd, o, cmd.OutOrStdout())
			},
		}
		f := create.Flags()
		o.flags(f)
		f.StringVar(&o.Domain, "domain", "default", "domain the enrolled endpoints join")
		f.IntVar(&o.Uses, "uses", 1, "how many endpoints may enroll with it (0: unlimited)")
		f.DurationVar(&o.Expires, "expires", 0, "validity, e.g. 24h (0: never expires)")
		cmd.AddCommand(create, serverTokenList(), serverTokenRevoke())
		return cmd
	})
}

func runServerTokenCreate(cmd *cobra.Command, o serverTokenCreateOptions, out io.Writer) error {
	req := api.TokenRequest{Domain: o.Domain, Uses: &o.Uses}
	if o.Expires > 0 {
		req.ExpiresIn = o.Expires.String()
	}
	var t api.Token
	if err := o.call(cmd.Context(), http.MethodPost, "/api/v1/tokens", nil, req, &t); err != nil {
		return err
	}
	if o.JSON {
		return printJSON(out, t)
	}
	uses := "unlimited uses"
	if t.MaxUses > 0 {
		uses = fmt.Sprintf("%d use(s)", t.MaxUses)
	}
	fmt.Fprintf(out, "enrollment token %s for domain %s (%s, expires %s), shown once:\n%s\n",
		t.ID, t.Domain, uses, timeOrDash(t.Expires), t.Secret)
	return nil
}

func serverTokenList() *cobra.Command {
	var c adminConn
	var domain string
	cmd := &cobra.Command{
		Use:   "list [--domain D]",
		Short: "List enrollment tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ts []api.Token
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/tokens", url.Values{"domain": {domain}}, nil, &ts); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), ts)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDOMAIN\tUSES\tMAX\tEXPIRES\tREVOKED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", t.ID, t.Domain, t.Uses, t.MaxUses, timeOrDash(t.Expires), timeOrDash(t.Revoked))
			}
			return tw.Flush()
		},
	}
	c.flags(cmd.Flags())
	cmd.Flags().StringVar(&domain, "domain", "", "only this domain's tokens")
	return cmd
}

func serverTokenRevoke() *cobra.Command {
	var c adminConn
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an enrollment token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), http.MethodDelete, "/api/v1/tokens/"+pathEscape(args[0]), nil, nil, nil)
		},
	}
	c.flags(cmd.Flags())
	return cmd
}
