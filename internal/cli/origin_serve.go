package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cascade-update/cascade/internal/httpserver"
	"github.com/cascade-update/cascade/internal/static"
)

// originServeOptions are the arguments of `cascade origin serve`.
type originServeOptions struct {
	Dir             string
	Listen          string // host:port
	TLSCert, TLSKey string // PEM files; both or neither
	TimestampMaxAge time.Duration
	// Listener, if set, is served instead of listening on Listen (tests
	// pass one bound to 127.0.0.1:0).
	Listener net.Listener
}

func init() {
	originCommands = append(originCommands, func() *cobra.Command {
		var o originServeOptions
		cmd := &cobra.Command{
			Use:   "serve DIR",
			Short: "Serve a vendor repository's published tree over HTTP(S)",
			Long: `Serve serves DIR/published (the tree endpoints, update agents, the server
and mirrors download from) until interrupted. Consistent-snapshot files are
sent as immutable; timestamp.json with a short max-age and an ETag that makes
conditional GETs cheap. Nothing outside DIR/published is reachable, and
directories are not listed. Any other static HTTP server can serve the same
tree instead.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Dir = args[0]
				ctx, stop := signalNotify(cmd.Context())
				defer stop()
				return runOriginServe(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to listen on (host:port; \":8080\" for every interface)")
		f.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS")
		f.StringVar(&o.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
		f.DurationVar(&o.TimestampMaxAge, "timestamp-max-age", time.Minute,
			"Cache-Control max-age of timestamp.json and other mutable files (0: no-cache)")
		return cmd
	})
}

// runOriginServe serves o.Dir/published until ctx is cancelled.
func runOriginServe(ctx context.Context, o originServeOptions, out, errOut io.Writer) error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return usageError(errors.New("origin serve: --tls-cert and --tls-key go together"))
	}
	if o.TimestampMaxAge < 0 {
		return usageError(fmt.Errorf("origin serve: --timestamp-max-age %v is negative", o.TimestampMaxAge))
	}
	tree := filepath.Join(o.Dir, "published")
	if fi, err := os.Stat(tree); err != nil || !fi.IsDir() {
		return usageError(fmt.Errorf("origin serve: %s is not a repository directory: no %s", o.Dir, tree))
	}
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := httpserver.NewServer(nil, log)
	scheme := "http"
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("origin serve: load TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	h, err := static.New(tree, static.Options{MutableMaxAge: o.TimestampMaxAge, Logger: log})
	if err != nil {
		return fmt.Errorf("origin serve: %w", err)
	}
	defer h.Close()
	srv.Handler = h
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return fmt.Errorf("origin serve: %w", err)
		}
	}
	fmt.Fprintf(out, "serving %s at %s://%s/\n", tree, scheme, ln.Addr())
	if err := httpserver.Run(ctx, srv, ln, httpserver.Options{Logger: log}); err != nil {
		return fmt.Errorf("origin serve: %w", err)
	}
	return nil
}
