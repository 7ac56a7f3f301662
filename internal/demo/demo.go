// Package demo runs a whole cascade site on one machine, on embedded
// defaults (`cascade demo`): a real origin, a management server, two
// update agents and a handful of clients, each a real HTTP server or
// endpoint on its own 127.0.x.y address, configured with a Customized
// Update Source List that sends each client to its agent. It shows the
// clients updating through their agents, then one agent stopping and its
// clients failing over as the policy says, and where every endpoint
// updated from.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/httpserver"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/static"
)

// ErrInterrupted is returned by Run when its context was cancelled before
// the demonstration ended (Ctrl-C); the site is stopped and, unless
// Options.Dir was given, removed.
var ErrInterrupted = errors.New("demo interrupted")

// Options configure a demo run.
type Options struct {
	// Out receives the demo's narration.
	Out io.Writer
	// Logger receives the components' logs (default: discard).
	Logger *slog.Logger
	// ClientsPerAgent is the number of clients behind each agent
	// (default 3).
	ClientsPerAgent int
	// Stay keeps the site running after the demonstration until ctx is
	// cancelled; otherwise Run returns when it is done.
	Stay bool
	// Dir is where the site lives (default: a new temporary directory,
	// removed when Run returns).
	Dir string
	// Ready, with Stay, is called once the demonstration is done, with
	// what a program needs to use the running site (scripts/screenshots
	// signs in to its console); the site runs until ctx is cancelled.
	Ready func(Site)
}

// Site is the running demo site, as Options.Ready receives it.
type Site struct {
	// ServerURL is the management server's URL, its API's and its web
	// console's; Fingerprint pins its self-signed certificate.
	ServerURL   string
	Fingerprint api.Fingerprint
	// AdminToken is an admin API token.
	AdminToken string
	// ConsoleUser and ConsolePassword sign in to the console (role admin).
	ConsoleUser, ConsolePassword string
	OriginURL                    string
	Dir                          string
}

// site is the running demo site.
type site struct {
	o      Options
	dir    string
	log    *slog.Logger
	out    io.Writer
	origin *repo.Repo
	// originURL, serverURL and the admin API client.
	originURL, serverURL string
	fp                   api.Fingerprint
	admin                *api.Client
	adminToken           string
	consolePassword      string // of the console account "admin"
	srv                  *server.Server
	eps                  []*member
	wg                   sync.WaitGroup
}

// Run runs the demonstration.
func Run(ctx context.Context, o Options) (err error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.ClientsPerAgent <= 0 {
		o.ClientsPerAgent = 3
	}
	s := &site{o: o, out: o.Out, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.dir = o.Dir; s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "cascade-demo-"); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(s.dir)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.wg.Wait()
		if s.srv != nil {
			s.srv.Close()
		}
		for _, m := range s.eps {
			m.close()
		}
	}()
	steps := []func(context.Context) error{s.startOrigin, s.startServer, s.configure, s.enroll, s.firstRound, s.failover}
	for _, step := range steps {
		err := step(ctx)
		if ctx.Err() != nil {
			// Whatever the step says, it failed because it was
			// interrupted: say that, not its failures.
			s.say("\nInterrupted: stopping the site and removing what it created.")
			return ErrInterrupted
		}
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	if !o.Stay {
		return nil
	}
	fmt.Fprintf(s.out, "\nThe site keeps running until you press Ctrl-C.\n  server  %s (fingerprint %s)\n  console %s  (sign in as admin, password %s; the certificate is self-signed)\n  admin   CASCADE_ADMIN_TOKEN=%s\n  origin  %s\n  data    %s\n",
		s.serverURL, s.fp, s.serverURL, s.consolePassword, s.adminToken, s.originURL, s.dir)
	if o.Ready != nil {
		o.Ready(Site{ServerURL: s.serverURL, Fingerprint: s.fp, AdminToken: s.adminToken, ConsoleUser: "admin",
			ConsolePassword: s.consolePassword, OriginURL: s.originURL, Dir: s.dir})
	}
	<-ctx.Done()
	return nil
}

func (s *site) say(format string, args ...any) { fmt.Fprintf(s.out, format+"\n", args...) }

// serve runs h on a new listener at addr until ctx ends.
func (s *site) serve(ctx context.Context, addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		httpserver.Run(ctx, httpserver.NewServer(h, s.log), ln, httpserver.Options{Logger: s.log})
	}()
	return "http://" + ln.Addr().String() + "/", nil
}

// startOrigin creates the vendor repository, publishes two components and
// serves it.
func (s *site) startOrigin(ctx context.Context) error {
	var err error
	s.origin, err = repo.Init(filepath.Join(s.dir, "origin"), repo.InitOptions{Options: repo.Options{Now: time.Now, Logger: s.log},
		Settings: repo.Settings{Kind: repo.Vendor, Bins: 64}})
	if err != nil {
		return err
	}
	if err := s.publish(ctx, "17.735.00"); err != nil {
		return err
	}
	h, err := static.New(filepath.Join(s.dir, "origin", "published"), static.Options{Logger: s.log})
	if err != nil {
		return err
	}
	if s.originURL, err = s.serve(ctx, "127.0.0.2:0", h); err != nil {
		return err
	}
	s.say("origin      %s  (vendor repository: pattern 17.735.00, engine 7.1)", s.originURL)
	return nil
}

// publish publishes a version of the pattern (and the engine once).
func (s *site) publish(ctx context.Context, version string) error {
	items := []repo.Item{{Category: "components", Name: "pattern", Version: version,
		Files: []repo.File{{Name: "lpt.ptn", Data: payload("pattern "+version, 256<<10)}}}}
	if version == "17.735.00" {
		items = append(items, repo.Item{Category: "components", Name: "engine", Version: "7.1",
			Files: []repo.File{{Name: "vsapi.bin", Data: payload("engine 7.1", 128<<10)}}})
	}
	_, err := s.origin.Publish(ctx, items...)
	return err
}

// payload is deterministic filler content of the given size.
func payload(seed string, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = seed[i%len(seed)] ^ byte(i>>10)
	}
	return b
}

// startServer creates and starts the management server.
func (s *site) startServer(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		return err
	}
	s.serverURL = "https://" + ln.Addr().String() + "/"
	root, err := s.origin.TrustedRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(s.dir, "server")
	// Every demo endpoint enrolls and holds its event stream from this
	// machine's address: no per-address limits.
	limits := server.Limits{EnrollPerMinute: -1, ConnsPerAddress: -1}
	res, err := server.Init(dir, server.InitOptions{Config: server.Config{Origin: s.originURL, Listen: ln.Addr().String(), URL: s.serverURL,
		Limits: limits,
		// Clients are released within half a second of their agents' reports.
		NotifyPoll: server.Duration(500 * time.Millisecond)},
		VendorRoot: root, Now: time.Now, Logger: s.log})
	if err != nil {
		ln.Close()
		return err
	}
	s.fp = res.Fingerprint
	if s.srv, err = server.New(ctx, server.Options{Dir: dir, Listener: ln, Logger: s.log}); err != nil {
		ln.Close()
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("server", "error", err)
		}
	}()
	_, secret, err := server.CreateAdminToken(ctx, s.srv.Store(), "demo")
	if err != nil {
		return err
	}
	s.adminToken = secret
	if s.consolePassword, err = consoleAccount(ctx, s.srv.Store()); err != nil {
		return err
	}
	if s.admin, err = api.NewClient(api.ClientOptions{URL: s.serverURL, Token: secret, Fingerprint: s.fp}); err != nil {
		return err
	}
	s.say("server      %s  (fingerprint %s)", s.serverURL, s.fp)
	return s.sync(ctx)
}

// sync asks the server to mirror the origin now.
func (s *site) sync(ctx context.Context) error {
	return s.admin.Call(ctx, http.MethodPost, "/api/v1/content/sync", nil, nil, nil)
}
