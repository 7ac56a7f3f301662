package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/demo"
)

// demoOptions are the flags of `cascade demo`.
type demoOptions struct {
	ClientsPerAgent int
	Exit            bool
	Verbose         bool
}

func init() {
	register(func() *cobra.Command {
		var o demoOptions
		cmd := &cobra.Command{
			Use:   "demo",
			Short: "Run a whole site on this machine: origin, server, two update agents, clients",
			Long: `Demo starts, on embedded defaults and in a temporary directory, a real origin,
a management server, two update agents and a few clients, each on its own
127.0.x.y address; sets a Customized Update Source List that sends each
client to its agent; shows the clients updating through their agents; then
stops one agent and publishes a new component, which the server notifies:
the running agent updates first, then the clients (the stopped agent's
through the server), listed in the order they finished. It keeps running
until interrupted (Ctrl-C), then removes what it created.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx, stop := signalContext(cmd.Context())
				defer stop()
				return runDemo(ctx, o, cmd.OutOrStdout())
			},
		}
		cmd.Flags().IntVar(&o.ClientsPerAgent, "clients", 3, "clients behind each update agent")
		cmd.Flags().BoolVar(&o.Exit, "exit", false, "exit after the demonstration instead of keeping the site running")
		cmd.Flags().BoolVar(&o.Verbose, "verbose", false, "show the components' logs")
		return cmd
	})
}

func runDemo(ctx context.Context, o demoOptions, out io.Writer) error {
	var log *slog.Logger
	if o.Verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	err := demo.Run(ctx, demo.Options{Out: out, Logger: log, ClientsPerAgent: o.ClientsPerAgent, Stay: !o.Exit})
	if errors.Is(err, demo.ErrInterrupted) {
		return nil // asked for (Ctrl-C), and the narration said so
	}
	return err
}
