package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
)

// explainOptions are the flags of `cascade explain`.
type explainOptions struct {
	PolicyFile string
	Role       string
	AgentID    string
	Addresses  []string
	Trigger    string
	JSON       bool
}

func init() {
	register(func() *cobra.Command {
		var o explainOptions
		cmd := &cobra.Command{
			Use:   "explain --policy FILE --role agent|client --address IP [--address IP ...]",
			Short: "Print the update plan of an endpoint and why each source is in it",
			Long: `Explain computes, from an update-source policy, which sources an endpoint
tries for each category, in order, and why (docs/update-process.md).
An invalid policy exits with status 2 and one line naming the problem.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runExplain(o, cmd.OutOrStdout())
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.PolicyFile, "policy", "", "update-source policy YAML file (required)")
		f.StringVar(&o.Role, "role", "", "endpoint role: agent or client (required)")
		f.StringVar(&o.AgentID, "agent-id", "", "the update agent's own id (role agent)")
		f.StringArrayVar(&o.Addresses, "address", nil, "an IP address of the endpoint (repeatable)")
		f.StringVar(&o.Trigger, "trigger", string(plan.DefaultTrigger), "scheduled, manual or notify-components")
		f.BoolVar(&o.JSON, "json", false, "print JSON (a fixed interface)")
		return cmd
	})
}

// explainInput validates the flags and loads the policy.
func explainInput(o explainOptions) (*policy.Policy, plan.Endpoint, plan.Trigger, error) {
	var ep plan.Endpoint
	if o.PolicyFile == "" {
		return nil, ep, "", errors.New("explain: --policy is required")
	}
	if o.Role == "" {
		return nil, ep, "", errors.New("explain: --role is required (agent or client)")
	}
	role, err := plan.ParseRole(o.Role)
	if err != nil {
		return nil, ep, "", fmt.Errorf("explain: --role: %w", err)
	}
	trig, err := plan.ParseTrigger(o.Trigger)
	if err != nil {
		return nil, ep, "", fmt.Errorf("explain: --trigger: %w", err)
	}
	if len(o.Addresses) == 0 {
		return nil, ep, "", errors.New("explain: at least one --address is required")
	}
	ep = plan.Endpoint{Role: role, AgentID: o.AgentID}
	for _, s := range o.Addresses {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, ep, "", fmt.Errorf("explain: --address %q is not an IP address", s)
		}
		ep.Addresses = append(ep.Addresses, a)
	}
	if o.AgentID != "" && !policy.ValidAgentID(o.AgentID) {
		return nil, ep, "", fmt.Errorf("explain: --agent-id %q is not a valid agent id", o.AgentID)
	}
	p, err := policy.Load(o.PolicyFile)
	if err != nil {
		return nil, ep, "", err
	}
	return p, ep, trig, nil
}

func runExplain(o explainOptions, out io.Writer) error {
	p, ep, trig, err := explainInput(o)
	if err != nil {
		return usageError(err)
	}
	pl := plan.For(p, ep, trig)
	if o.JSON {
		return writeExplainJSON(out, pl)
	}
	return writeExplainText(out, pl)
}

// explainJSON is the fixed JSON interface of docs/update-process.md.
type explainJSON struct {
	Role       plan.Role                           `json:"role"`
	Trigger    plan.Trigger                        `json:"trigger"`
	Categories map[category.Category][]explainStep `json:"categories"`
}

type explainStep struct {
	Source string `json:"source"`
	Why    string `json:"why"`
}

func writeExplainJSON(out io.Writer, pl plan.Plan) error {
	doc := explainJSON{Role: pl.Role, Trigger: pl.Trigger, Categories: map[category.Category][]explainStep{}}
	for c, steps := range pl.Categories {
		list := make([]explainStep, 0, len(steps))
		for _, s := range steps {
			list = append(list, explainStep{Source: s.Source.String(), Why: s.Why})
		}
		doc.Categories[c] = list
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("explain: write JSON: %w", err)
	}
	return nil
}

func writeExplainText(out io.Writer, pl plan.Plan) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "role %s, trigger %s, rule %s\n", pl.Role, pl.Trigger, pl.Rule)
	fmt.Fprintln(tw, "CATEGORY\t#\tSOURCE\tWHY")
	for _, c := range category.All {
		steps, ok := pl.Categories[c]
		if !ok {
			continue
		}
		if len(steps) == 0 {
			fmt.Fprintf(tw, "%s\t-\t(none)\tno source can update it: the category quits\n", c)
		}
		for i, s := range steps {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", c, i+1, s.Source, s.Why)
		}
	}
	for _, n := range pl.Notes {
		fmt.Fprintf(tw, "note: %s\n", n)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("explain: write: %w", err)
	}
	return nil
}
