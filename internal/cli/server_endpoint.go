package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/server/api"
)

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		cmd := &cobra.Command{Use: "endpoint", Short: "List, inspect, designate and revoke enrolled endpoints"}
		cmd.AddCommand(serverEndpointList(), serverEndpointShow(), serverEndpointRole(), serverEndpointRevoke(), serverEndpointNotify())
		return cmd
	}, func() *cobra.Command {
		cmd := &cobra.Command{Use: "agents", Short: "List update agents and their analytical report"}
		cmd.AddCommand(serverAgentsList(), serverAgentsReport())
		return cmd
	})
}

func serverEndpointList() *cobra.Command {
	var domain, role string
	var revoked bool
	cmd := adminCommand("list [--domain D] [--role R]", "List endpoints (every page)", cobra.NoArgs,
		func(cmd *cobra.Command, c *adminConn, _ []string) error {
			var all []api.Endpoint
			q := url.Values{"domain": {domain}, "role": {role}, "revoked": {fmt.Sprint(revoked)}}
			for {
				var page api.EndpointList
				if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/endpoints", q, nil, &page); err != nil {
					return err
				}
				all = append(all, page.Endpoints...)
				if page.Next == "" {
					break
				}
				q.Set("after", page.Next)
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), all)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tHOSTNAME\tDOMAIN\tROLE\tAGENT\tADDRESSES\tLAST SEEN\tCONNECTED")
			for _, e := range all {
				role := e.Role
				if e.Revoked != nil {
					role += " (revoked)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\n", e.ID, e.Hostname, e.Domain, role, dash(e.AgentID),
					strings.Join(e.Addresses, ","), e.LastSeen.Format(time.RFC3339), e.Connected)
			}
			return tw.Flush()
		})
	cmd.Flags().StringVar(&domain, "domain", "", "only this domain")
	cmd.Flags().StringVar(&role, "role", "", "only this role (client or agent)")
	cmd.Flags().BoolVar(&revoked, "revoked", false, "include revoked endpoints")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func serverEndpointShow() *cobra.Command {
	return adminCommand("show ID", "Show an endpoint and its last report (JSON)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *adminConn, args []string) error {
			var e api.Endpoint
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/endpoints/"+pathEscape(args[0]), nil, nil, &e); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), e)
		})
}

func serverEndpointRole() *cobra.Command {
	var agentID, agentURL string
	var client bool
	cmd := adminCommand("role ID (--agent AGENT_ID [--url URL] | --client)",
		"Designate an endpoint as an update agent (its id in agent:ID sources, and the URL it serves at) or as a client",
		cobra.ExactArgs(1), func(cmd *cobra.Command, c *adminConn, args []string) error {
			req := api.SetRole{Role: "agent", AgentID: agentID}
			if client == (agentID != "") {
				return usageError(fmt.Errorf("endpoint role: give exactly one of --agent and --client"))
			}
			if client {
				req = api.SetRole{Role: "client"}
			}
			if cmd.Flags().Changed("url") {
				req.AgentURL = &agentURL
			}
			var e api.Endpoint
			if err := c.call(cmd.Context(), http.MethodPut, "/api/v1/endpoints/"+pathEscape(args[0])+"/role", nil, req, &e); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (%s): %s %s %s\n", e.ID, e.Hostname, e.Role, e.AgentID, e.AgentURL)
			return nil
		})
	cmd.Flags().StringVar(&agentID, "agent", "", "make it the update agent with this id")
	cmd.Flags().StringVar(&agentURL, "url", "", "base URL the agent serves content at")
	cmd.Flags().BoolVar(&client, "client", false, "make it a client")
	return cmd
}

func serverEndpointRevoke() *cobra.Command {
	return adminCommand("revoke ID", "Revoke an endpoint's credential (its calls are refused from now on)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *adminConn, args []string) error {
			return c.call(cmd.Context(), http.MethodPost, "/api/v1/endpoints/"+pathEscape(args[0])+"/revoke", nil, nil, nil)
		})
}

func serverEndpointNotify() *cobra.Command {
	return adminCommand("notify ID", "Update now: notify this endpoint alone of the deployed component versions", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *adminConn, args []string) error {
			var n api.Notification
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/endpoints/"+pathEscape(args[0])+"/notify", nil, nil, &n); err != nil {
				return err
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "notification %s sent to endpoint %s\n", n.ID, args[0])
			return nil
		})
}

func serverAgentsList() *cobra.Command {
	return adminCommand("list", "List update agents", cobra.NoArgs, func(cmd *cobra.Command, c *adminConn, _ []string) error {
		var as []api.AgentInfo
		if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/agents", nil, nil, &as); err != nil {
			return err
		}
		if c.JSON {
			return printJSON(cmd.OutOrStdout(), as)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AGENT\tENDPOINT\tHOSTNAME\tURL\tLAST SEEN\tCONNECTED")
		for _, a := range as {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", a.AgentID, a.EndpointID, a.Hostname, dash(a.URL), a.LastSeen.Format(time.RFC3339), a.Connected)
		}
		return tw.Flush()
	})
}

func serverAgentsReport() *cobra.Command {
	var members bool
	cmd := adminCommand("report [--members]", "Per update agent: the endpoints whose list starts with it, their state, and where they updated from",
		cobra.NoArgs, func(cmd *cobra.Command, c *adminConn, _ []string) error {
			var rep api.AgentReport
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/agents/report", url.Values{"members": {fmt.Sprint(members)}}, nil, &rep); err != nil {
				return err
			}
			if c.JSON || members {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AGENT\tENDPOINTS\tUP TO DATE\tBEHIND\tFAILING\tNO REPORT\tDOWNLOADED\tSAVED BY DELTAS\tCOMPONENTS CAME FROM")
			for _, a := range append(rep.Agents, rep.Unassigned) {
				name := a.AgentID
				if name == "" {
					name = "(no agent first)"
				} else if !a.InDirectory {
					name += " (not enrolled)"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", name, a.Endpoints, a.States[api.StateUpToDate], a.States[api.StateBehind],
					a.States[api.StateFailing], a.States[api.StateNoReport], agentBytes(a.Bytes), deltaSavings(a.Bytes, a.FullBytes),
					sourceSummary(a.Sources["components"]))
			}
			return tw.Flush()
		})
	cmd.Flags().BoolVar(&members, "members", false, "list each agent's endpoints (JSON)")
	return cmd
}

// deltaSavings renders what deltas saved of a full download: "1.2 GiB
// (98%)", or "-" when nothing was downloaded.
func deltaSavings(bytes, full int64) string {
	if full <= 0 || full <= bytes {
		return "-"
	}
	return fmt.Sprintf("%s (%.0f%%)", agentBytes(full-bytes), 100*float64(full-bytes)/float64(full))
}

// sourceSummary renders source counts as "agent:ua-1=10 server=2".
func sourceSummary(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return dash(strings.Join(parts, " "))
}
