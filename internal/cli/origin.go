package cli

import "github.com/spf13/cobra"

// originCommands registers the subcommands of `cascade origin`; each lives
// in its own origin_*.go file and adds itself from an init function.
var originCommands []func() *cobra.Command

func init() {
	register(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "origin",
			Short: "Create, publish to, refresh and serve a vendor repository",
		}
		for _, f := range originCommands {
			cmd.AddCommand(f())
		}
		return cmd
	})
}
