package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/policy"
)

// policyCheckOptions are the arguments of `cascade policy check`.
type policyCheckOptions struct {
	File string
}

func init() {
	register(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "policy",
			Short: "Work with update-source policy files",
		}
		cmd.AddCommand(&cobra.Command{
			Use:   "check FILE",
			Short: "Validate a policy file and print every problem, one per line",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runPolicyCheck(policyCheckOptions{File: args[0]}, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		})
		return cmd
	})
}

// runPolicyCheck prints "ok" and a summary for a valid policy; for an
// invalid one it prints every problem on stderr and exits with status 2.
func runPolicyCheck(o policyCheckOptions, out, errOut io.Writer) error {
	p, err := policy.Load(o.File)
	var ve *policy.ValidationError
	if errors.As(err, &ve) {
		for _, pr := range ve.Problems {
			fmt.Fprintf(errOut, "cascade: policy %s: %s\n", o.File, pr)
		}
		return &ExitError{Code: 2, Err: err, Reported: true}
	}
	if err != nil {
		return usageError(err)
	}
	fmt.Fprintf(out, "ok: %s: %d custom sources, clients %s, agents %s\n",
		o.File, len(p.CustomSources), p.Clients.Source, p.Agents.Source)
	return nil
}
