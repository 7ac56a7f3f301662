// Package httpserver runs an *http.Server as a service
// (ARCHITECTURE.md, Conventions): Run serves until its context is cancelled, then shuts down
// gracefully, letting requests in flight finish within a time limit. The
// origin, update agents and the management server all serve through it.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Options configures Run. The zero value serves plain HTTP.
type Options struct {
	// CertFile and KeyFile are PEM files of the TLS certificate (chain)
	// and its private key; both or neither. With neither, Run serves TLS
	// only if srv.TLSConfig already holds a certificate.
	CertFile, KeyFile string
	// ShutdownTimeout bounds the graceful shutdown (default 10s). Requests
	// still running after it, such as a large download on a slow link, are
	// cut off.
	ShutdownTimeout time.Duration
	// Logger receives start and stop records (default: discard).
	Logger *slog.Logger
}

// Run serves srv on ln until ctx is cancelled, then shuts srv down
// gracefully. It returns nil after a clean shutdown, an error if serving
// failed (ln is then closed) or if requests were still running when the
// shutdown timeout expired (they are then cut off).
func Run(ctx context.Context, srv *http.Server, ln net.Listener, opts Options) error {
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		ln.Close()
		return errors.New("httpserver: a TLS certificate needs its key and a key its certificate")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	useTLS := opts.CertFile != "" || hasCertificate(srv.TLSConfig)
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, opts.CertFile, opts.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	log.Info("serving", "addr", ln.Addr().String(), "tls", useTLS)
	select {
	case err := <-errc:
		return fmt.Errorf("httpserver: serve: %w", err)
	case <-ctx.Done():
	}
	timeout := opts.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("httpserver: shutdown after %s: %w", timeout, err)
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("httpserver: serve: %w", serr)
	}
	log.Info("stopped", "addr", ln.Addr().String(), "err", err)
	return err
}

func hasCertificate(c *tls.Config) bool {
	return c != nil && (len(c.Certificates) > 0 || c.GetCertificate != nil || c.GetConfigForClient != nil)
}

// NewServer returns an *http.Server for h with limits suited to serving
// repository files to many clients over slow links: bounded header
// reading (no ReadTimeout: its deadline would also cancel the context of
// a long response; a handler that reads a request body bounds it with
// its own read deadline, as the management server's API does), idle
// connections closed after two minutes, small
// headers, and no write timeout (a large target may legitimately take a
// long time; the clients' minimum rate and the shutdown timeout bound it).
// The server's own error messages go to logger at debug level (TLS
// handshakes from scanners are noise).
func NewServer(h http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}
