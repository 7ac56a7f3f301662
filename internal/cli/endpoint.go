package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/install"
)

// endpointCommands registers the subcommands of `cascade endpoint`; each
// lives in its own endpoint_*.go file.
var endpointCommands []func() *cobra.Command

func init() {
	register(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "endpoint",
			Short: "Run, update and inspect an endpoint (client or update agent)",
		}
		for _, f := range endpointCommands {
			cmd.AddCommand(f())
		}
		return cmd
	})
}

// openEndpoint loads the configuration and opens the endpoint's stores.
func openEndpoint(configFile string, log *slog.Logger, o endpoint.Options) (*endpoint.Config, *endpoint.Endpoint, error) {
	cfg, err := endpoint.LoadConfig(configFile)
	if err != nil {
		return nil, nil, usageError(err)
	}
	o.Logger = log
	o.Now = time.Now
	ep, err := endpoint.Open(cfg, o)
	if errors.Is(err, install.ErrInUse) {
		return nil, nil, fmt.Errorf("%w (is `cascade endpoint run` running with this configuration? ask it with `cascade endpoint update --now --config %s`)", err, configFile)
	}
	if err != nil {
		return nil, nil, err
	}
	return cfg, ep, nil
}

// newLogger returns the logger of long-running commands: text on stderr.
func newLogger(debug bool) *slog.Logger {
	lvl := slog.LevelInfo
	if debug {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// quietLogger logs warnings and errors only, for one-shot commands.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signalNotify(parent)
}
