package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/buildinfo"
)

func init() {
	register(func() *cobra.Command {
		var asJSON bool
		cmd := &cobra.Command{
			Use:   "version [--json]",
			Short: "Print the version, commit and date of this build",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				in := buildinfo.Read()
				if asJSON {
					return printJSON(cmd.OutOrStdout(), in)
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), in)
				return err
			},
		}
		cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		return cmd
	})
}
