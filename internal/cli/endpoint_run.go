package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/endpoint"
)

// endpointRunOptions are the flags of `cascade endpoint run`.
type endpointRunOptions struct {
	Config string
	Debug  bool
}

func init() {
	endpointCommands = append(endpointCommands, func() *cobra.Command {
		var o endpointRunOptions
		cmd := &cobra.Command{
			Use:   "run --config FILE",
			Short: "Run the endpoint daemon: scheduled updates with jitter, and updates on request",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx, stop := signalContext(cmd.Context())
				defer stop()
				return runEndpointRun(ctx, o)
			},
		}
		cmd.Flags().StringVar(&o.Config, "config", "", "endpoint configuration file (required)")
		cmd.Flags().BoolVar(&o.Debug, "debug", false, "log every source attempt")
		cmd.MarkFlagRequired("config")
		return cmd
	})
}

func runEndpointRun(ctx context.Context, o endpointRunOptions) error {
	_, ep, err := openEndpoint(o.Config, newLogger(o.Debug), endpoint.Options{})
	if err != nil {
		return err
	}
	defer ep.Close()
	return ep.Run(ctx)
}
