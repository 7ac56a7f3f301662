package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/whatif"
)

// The policy tools of the admin API (docs/api.md, Policy tools) as
// `cascade server policy lint|preview|whatif`.

// readPolicyFile reads a policy file to send to the server.
func readPolicyFile(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", usageError(fmt.Errorf("load policy: %w", err))
	}
	return string(data), nil
}

// policyToolError reports the server's refusal of an invalid policy file
// as `cascade policy check` does: every problem on its own line, status 2.
func policyToolError(file string, err error, errOut io.Writer) error {
	var se *api.StatusError
	if file != "" && errors.As(err, &se) && se.Code == http.StatusBadRequest && len(se.Problems) > 0 {
		for _, p := range se.Problems {
			fmt.Fprintf(errOut, "cascade: policy %s: %s\n", file, p)
		}
		return &ExitError{Code: ExitUsage, Err: err, Reported: true}
	}
	return apiError(err)
}

func serverPolicyLint() *cobra.Command {
	var c adminConn
	cmd := &cobra.Command{
		Use:   "lint [FILE]",
		Short: "Warn about what in the policy in force (or FILE) is legal but most likely a mistake",
		Long: `Lint checks the policy in force, or FILE (validated first exactly as
` + "`cascade policy check`" + ` does), against the server's registry of enrolled endpoints
and prints one warning per line (docs/policy.md, Warnings): entries naming an
agent that is not enrolled or is revoked, agents without an address of their
entry's family, entries covering no enrolled endpoint, entries never used
because earlier entries with the same source cover their whole range, and
update agents no entry names. Warnings are advice: the exit status is 0.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			var res api.LintResult
			file := ""
			if len(args) == 1 {
				file = args[0]
				doc, err := readPolicyFile(file)
				if err != nil {
					return err
				}
				err = cl.Call(cmd.Context(), http.MethodPost, api.PathPolicyLint, nil, api.PutPolicy{Document: doc}, &res)
				if err != nil {
					return policyToolError(file, err, cmd.ErrOrStderr())
				}
			} else if err := cl.Call(cmd.Context(), http.MethodGet, api.PathPolicyLint, nil, nil, &res); err != nil {
				return apiError(err)
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return writeLint(cmd.OutOrStdout(), file, res)
		},
	}
	c.flags(cmd.Flags())
	return cmd
}

func writeLint(out io.Writer, file string, res api.LintResult) error {
	for _, w := range res.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w.Message)
	}
	what := fmt.Sprintf("policy version %d", res.PolicyVersion)
	if file != "" {
		what = "policy " + file
	}
	n := "no warnings"
	switch len(res.Warnings) {
	case 0:
	case 1:
		n = "1 warning"
	default:
		n = fmt.Sprintf("%d warnings", len(res.Warnings))
	}
	_, err := fmt.Fprintf(out, "%s: %s against %s (%s)\n", what, n, plural(res.Endpoints, "enrolled endpoint"), plural(res.Agents, "update agent"))
	return err
}

func serverPolicyPreview() *cobra.Command {
	var c adminConn
	var endpoints, addresses, ranges []string
	var role, agentID, trigger string
	cmd := &cobra.Command{
		Use:   "preview FILE (--endpoint ID|HOSTNAME ... | --address IP ... | --range RANGE ... [--role agent|client] [--agent-id ID])",
		Short: "Show endpoints' plans under the policy FILE beside their plans under the policy in force",
		Long: `Preview sends FILE (validated as ` + "`cascade policy check`" + ` does) and prints, for each
--endpoint (an enrolled endpoint's id or hostname: its role, agent id and
addresses come from the registry) and for the --address set (one endpoint
with those addresses), each category's sources under the policy in force and
under FILE, with the reason for each, marking the positions that differ.
The --range set (single addresses, ranges from-to, CIDRs, IPv6 prefixes, as
a policy entry's addresses are written) is shown in groups of addresses with
one plan each, split where an entry of either policy starts or ends, with the
enrolled endpoints in each; every group of the set is fetched, page by page.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := readPolicyFile(args[0])
			if err != nil {
				return err
			}
			req := api.PreviewRequest{Document: doc, Trigger: trigger}
			for _, e := range endpoints {
				req.Targets = append(req.Targets, api.PreviewTarget{Endpoint: e})
			}
			if len(addresses) > 0 {
				req.Targets = append(req.Targets, api.PreviewTarget{Addresses: addresses, Role: role, AgentID: agentID})
			}
			rangeAt := -1
			if len(ranges) > 0 {
				rangeAt = len(req.Targets)
				req.Targets = append(req.Targets, api.PreviewTarget{Ranges: ranges, Role: role, AgentID: agentID, Limit: api.MaxPreviewGroups})
			}
			if len(addresses) == 0 && len(ranges) == 0 && (role != "" || agentID != "") {
				return usageError(errors.New("preview: --role and --agent-id go with --address or --range"))
			}
			if len(req.Targets) == 0 {
				return usageError(errors.New("preview: give at least one --endpoint, --address or --range"))
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var res api.PreviewResult
			if err := cl.Call(cmd.Context(), http.MethodPost, api.PathPolicyPreview, nil, req, &res); err != nil {
				return policyToolError(args[0], err, cmd.ErrOrStderr())
			}
			// The rest of the set's groups, a page at a time.
			for rangeAt >= 0 && rangeAt < len(res.Previews) && res.Previews[rangeAt].Next != "" {
				p := &res.Previews[rangeAt]
				more := api.PreviewRequest{Document: doc, Trigger: trigger, Targets: []api.PreviewTarget{req.Targets[rangeAt]}}
				more.Targets[0].Start = p.Next
				var page api.PreviewResult
				if err := cl.Call(cmd.Context(), http.MethodPost, api.PathPolicyPreview, nil, more, &page); err != nil {
					return policyToolError(args[0], err, cmd.ErrOrStderr())
				}
				if len(page.Previews) != 1 || len(page.Previews[0].Groups) == 0 {
					return fmt.Errorf("preview: the server answered no groups from %s", p.Next)
				}
				p.Groups = append(p.Groups, page.Previews[0].Groups...)
				p.ChangedGroups += page.Previews[0].ChangedGroups
				p.Next = page.Previews[0].Next
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return writePreview(cmd.OutOrStdout(), args[0], res)
		},
	}
	c.flags(cmd.Flags())
	f := cmd.Flags()
	f.StringArrayVar(&endpoints, "endpoint", nil, "an enrolled endpoint's id or hostname (repeatable)")
	f.StringArrayVar(&addresses, "address", nil, "an address of the endpoint to preview (repeatable: one endpoint with all of them)")
	f.StringArrayVar(&ranges, "range", nil, "a set of addresses to preview in groups: an address, from-to, a CIDR or an IPv6 prefix (repeatable: one set)")
	f.StringVar(&role, "role", "", "with --address or --range: agent or client (default client)")
	f.StringVar(&agentID, "agent-id", "", "with --address or --range and --role agent: the agent's own id")
	f.StringVar(&trigger, "trigger", "", "scheduled (default), manual or notify-components")
	return cmd
}

func writePreview(out io.Writer, file string, res api.PreviewResult) error {
	tw := newTable(out)
	fmt.Fprintf(tw, "in force: policy version %d; edited: %s; * marks a position that differs\n", res.PolicyVersion, file)
	for _, p := range res.Previews {
		fmt.Fprintln(tw)
		t := p.Target
		name := strings.Join(t.Addresses, " ")
		if t.EndpointID != "" {
			name = fmt.Sprintf("%s (%s, %s)", t.Hostname, t.EndpointID, name)
		}
		if t.AgentID != "" {
			name += ", agent " + t.AgentID
		}
		if len(p.Groups) > 0 {
			fmt.Fprintf(tw, "%s %s: %d groups with one plan each, %d differ\n", t.Role, name, len(p.Groups), p.ChangedGroups)
			for _, g := range p.Groups {
				fmt.Fprintf(tw, "\ngroup %s: %s, %d categories differ\n", g.Addresses, plural(g.Endpoints, "enrolled endpoint"), len(g.Changed))
				writeComparison(tw, g.Comparison)
			}
			continue
		}
		fmt.Fprintf(tw, "%s %s: %d categories differ\n", t.Role, name, len(p.Changed))
		writeComparison(tw, p.Comparison)
	}
	return tw.Flush()
}

// writeComparison writes a comparison's rows: per category and position
// the source in force and edited, with the edited one's reason.
func writeComparison(tw io.Writer, p whatif.Comparison) {
	fmt.Fprintln(tw, "CATEGORY\t#\tIN FORCE\tEDITED\tWHY (EDITED)")
	for _, c := range category.All {
		cur, okC := p.Current.Categories[c]
		ed, okE := p.Edited.Categories[c]
		if !okC && !okE {
			continue
		}
		if len(cur) == 0 && len(ed) == 0 {
			fmt.Fprintf(tw, "%s\t-\t(none)\t(none)\tno source: the category quits\n", c)
		}
		for j := range max(len(cur), len(ed)) {
			a, b, why := "-", "-", ""
			if j < len(cur) {
				a = cur[j].Source
			}
			if j < len(ed) {
				b, why = ed[j].Source, ed[j].Why
			}
			mark := " "
			if a != b {
				mark = "*"
			}
			fmt.Fprintf(tw, "%s\t%d%s\t%s\t%s\t%s\n", c, j+1, mark, a, b, why)
		}
	}
}

func serverPolicyWhatIf() *cobra.Command {
	var c adminConn
	var policyFile, trigger string
	var down []string
	cmd := &cobra.Command{
		Use:   "whatif [--policy FILE] --down SOURCE ...",
		Short: "Show where every enrolled endpoint would update from with some sources down, and the bytes each party would carry",
		Long: `Whatif computes, under the policy in force (or --policy FILE), for every
enrolled endpoint the source each category would end at with the --down
sources unavailable (server, origin, agent:ID or a mirror URL), how many fall
back to the server or the origin or have no source at all, and the bytes the
server, the WAN (the origin), agents and mirrors would carry to bring every
endpoint to the component versions deployed now.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.WhatIfRequest{Down: down, Trigger: trigger}
			if _, err := whatif.ParseDown(down); err != nil {
				return usageError(fmt.Errorf("whatif: --down: %w", err))
			}
			if policyFile != "" {
				doc, err := readPolicyFile(policyFile)
				if err != nil {
					return err
				}
				req.Document = doc
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var res api.WhatIfResult
			if err := cl.Call(cmd.Context(), http.MethodPost, api.PathPolicyWhatIf, nil, req, &res); err != nil {
				return policyToolError(policyFile, err, cmd.ErrOrStderr())
			}
			if c.JSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return writeWhatIf(cmd.OutOrStdout(), policyFile, res)
		},
	}
	c.flags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&policyFile, "policy", "", "an edited policy file (default: the policy in force)")
	f.StringArrayVar(&down, "down", nil, "a source marked down: server, origin, agent:ID or a mirror URL (repeatable)")
	f.StringVar(&trigger, "trigger", "", "scheduled (default), manual or notify-components")
	return cmd
}

func writeWhatIf(out io.Writer, file string, res api.WhatIfResult) error {
	if res.Result == nil {
		return errors.New("whatif: the server answered no result")
	}
	tw := newTable(out)
	what := fmt.Sprintf("policy version %d", res.PolicyVersion)
	if file != "" {
		what = "policy " + file
	}
	down := strings.Join(res.Down, ", ")
	if down == "" {
		down = "nothing"
	}
	fmt.Fprintf(tw, "%s, trigger %s, %d enrolled endpoints; down: %s\n", what, res.Trigger, res.Endpoints, down)
	if len(res.Unavailable) > 0 {
		fmt.Fprintf(tw, "unreachable whatever is down (not enrolled, revoked or without a URL): agent %s\n", strings.Join(res.Unavailable, ", agent "))
	}
	if len(res.Starved) > 0 {
		fmt.Fprintf(tw, "without a source for the deployed components themselves, so skipped for components: agent %s\n", strings.Join(res.Starved, ", agent "))
	}
	fmt.Fprintln(tw, "\nCATEGORY\tEND AT\tENDPOINTS\tAGENTS\tCLIENTS\tBYTES")
	for _, c := range category.All {
		cr := res.Categories[c]
		if cr == nil {
			continue
		}
		for _, s := range cr.Sources {
			b := "-"
			if c == category.Components {
				b = agentBytes(s.Bytes)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", c, s.Source, s.Endpoints, s.Agents, s.Clients, b)
		}
	}
	fmt.Fprintln(tw, "\nCATEGORY\tSERVER\tORIGIN\tNO SOURCE\tFELL BACK")
	for _, c := range category.All {
		if cr := res.Categories[c]; cr != nil {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", c, cr.Server, cr.Origin, cr.Quit, cr.FellBack)
		}
	}
	fmt.Fprintf(tw, "\nbytes for the deployed components (%s): server %s, WAN %s, agents %s, mirrors %s, stranded %s\n",
		deployedList(res.Deployed), agentBytes(res.Bytes.Server), agentBytes(res.Bytes.WAN), agentBytes(res.Bytes.Agents),
		agentBytes(res.Bytes.URLs), agentBytes(res.Bytes.Stranded))
	for _, n := range res.Notes {
		fmt.Fprintf(tw, "note: %s\n", n)
	}
	fmt.Fprintln(tw, "\nROLE\tENDPOINTS\tBEHIND\tBYTES\tEND AT\tEXAMPLES")
	for _, g := range res.Groups {
		var at []string
		for _, c := range category.All {
			if s, ok := g.EndAt[c]; ok {
				at = append(at, string(c)+" "+s)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", g.Role, g.Endpoints, g.NeedUpdate, agentBytes(g.Bytes), strings.Join(at, ", "), strings.Join(g.Examples, " "))
	}
	return tw.Flush()
}

func deployedList(m map[string]whatif.Component) string {
	v := map[string]string{}
	for name, c := range m {
		v[name] = c.Version
	}
	if len(v) == 0 {
		return "none deployed"
	}
	return versions(v)
}

// plural is n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
