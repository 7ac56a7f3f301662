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
	// Agents lets the token enroll update agents as well as clients.
	Agents bool
}

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke enrollment tokens"}
		var o serverTokenCreateOptions
		create := &cobra.Command{
			Use:   "create --domain D [--uses N] [--expires DURATION] [--agents]",
			Short: "Create an enrollment token (single use by default), printed once",
			Long: `Create an enrollment token, printed once (its last line).

By default the token enrolls clients only: an endpoint enrolling with it as
an update agent (--role agent) is refused. Create the tokens for update
agents with --agents, and hand them out only to the agents' hosts: an agent
is contacted by every client whose update-source list names its id.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runServerTokenCreate(cmd, o, cmd.OutOrStdout())
			},
		}
		f := create.Flags()
		o.flags(f)
		f.StringVar(&o.Domain, "domain", "default", "domain the enrolled endpoints join")
		f.IntVar(&o.Uses, "uses", 1, "how many endpoints may enroll with it (0: unlimited)")
		f.DurationVar(&o.Expires, "expires", 0, "validity, e.g. 24h (0: never expires)")
		f.BoolVar(&o.Agents, "agents", false, "may also enroll update agents (--role agent); default: clients only")
		cmd.AddCommand(create, serverTokenList(), serverTokenRevoke())
		return cmd
	})
}

func runServerTokenCreate(cmd *cobra.Command, o serverTokenCreateOptions, out io.Writer) error {
	req := api.TokenRequest{Domain: o.Domain, Uses: &o.Uses, Agents: o.Agents}
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
	fmt.Fprintf(out, "enrollment token %s for domain %s (%s, %s, expires %s), shown once:\n%s\n",
		t.ID, t.Domain, uses, enrolls(t), timeOrDash(t.Expires), t.Secret)
	return nil
}

// enrollsShort is enrolls in a column of token list.
func enrollsShort(t api.Token) string {
	if t.Agents {
		return "clients+agents"
	}
	return "clients"
}

// enrolls says which roles the token enrolls.
func enrolls(t api.Token) string {
	if t.Agents {
		return "clients and update agents"
	}
	return "clients only"
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
			fmt.Fprintln(tw, "ID\tDOMAIN\tENROLLS\tUSES\tMAX\tEXPIRES\tREVOKED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", t.ID, t.Domain, enrollsShort(t), t.Uses, t.MaxUses,
					timeOrDash(t.Expires), timeOrDash(t.Revoked))
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
