package cli

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/server"
)

// serverRunOptions are the flags of `cascade server run`.
type serverRunOptions struct {
	Data     string
	Database string
	Listen   string
	Origin   string
	Proxy    string
	Debug    bool
	// Listener, if set, is served instead of listening (tests).
	Listener net.Listener
}

func init() {
	serverCommands = append(serverCommands, func() *cobra.Command {
		var o serverRunOptions
		cmd := &cobra.Command{
			Use:   "run --data DIR",
			Short: "Run the management server until interrupted",
			Long: `Run serves HTTPS (the vendor mirror under /vendor/, the site repository under
/site/, the endpoint and admin APIs under /api/v1) and runs the origin sync,
the site repository's refresh, report ingestion, history pruning and the
notification hub, until SIGINT or SIGTERM; then it shuts down gracefully.
Flags override server.json for this run.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx, stop := signalContext(cmd.Context())
				defer stop()
				return runServerRun(ctx, o, cmd.OutOrStdout())
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.Data, "data", "", "server data directory (required)")
		f.StringVar(&o.Database, "database", "", "PostgreSQL URL (postgres://...) instead of the configured database")
		f.StringVar(&o.Listen, "listen", "", "address to serve on instead of the configured one")
		f.StringVar(&o.Origin, "origin", "", "origin URL instead of the configured one")
		f.StringVar(&o.Proxy, "proxy", "", "HTTP proxy to reach the origin through")
		f.BoolVar(&o.Debug, "debug", false, "log at debug level")
		cmd.MarkFlagRequired("data")
		return cmd
	})
}

func runServerRun(ctx context.Context, o serverRunOptions, out io.Writer) error {
	if err := checkServerURLFlags(o.Database, o.Proxy); err != nil {
		return err
	}
	cfg, err := server.LoadConfig(o.Data)
	if err != nil {
		return usageError(err)
	}
	for _, v := range []struct{ flag, dst *string }{{&o.Database, &cfg.Database}, {&o.Listen, &cfg.Listen},
		{&o.Origin, &cfg.Origin}, {&o.Proxy, &cfg.Proxy}} {
		if *v.flag != "" {
			*v.dst = *v.flag
		}
	}
	log := newLogger(o.Debug)
	// Listen before opening: the "server at" line below is printed only
	// once the server listens and holds its data directory.
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("server: listen on %s: %w", cfg.Listen, err)
		}
	}
	srv, err := server.New(ctx, server.Options{Dir: o.Data, Config: cfg, Listener: ln, Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()
	fmt.Fprintf(out, "cascade server at %s\nkey fingerprint (for enrollment): %s\n", srv.URL(), srv.Fingerprint())
	return srv.Run(ctx)
}
