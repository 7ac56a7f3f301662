// Package server is the management server (the source document's "OfficeScan
// server"): one process that mirrors the vendor repository from the
// origin and serves it under /vendor/, signs and serves the site
// repository (update-source policy, deployment caps, domain settings and
// program approvals) under /site/, enrolls endpoints and keeps their
// registry and update reports, notifies them of new components, and
// offers the admin API under /api/v1 (docs/api.md).
//
// Everything runs as services (Run(ctx) error) under one supervisor:
// the HTTPS listener, the origin sync, the site repository's reconcile
// and timestamp refresh, the batched report ingestion, history pruning
// and the notification hub. State lives in the database (internal/store:
// SQLite by default, PostgreSQL for several processes) and in the data
// directory (Init): server.json, the site repository's keys and tree, the
// mirrored vendor tree and its trusted metadata, the TLS certificate.
// Several processes share a PostgreSQL database and nothing else
// (cluster.go, Join): the database holds the signed site repository, one
// process (the writer) signs, and the others materialise what it signed.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/filelock"
	"github.com/cascade-update/cascade/internal/httpserver"
	"github.com/cascade-update/cascade/internal/notify/hub"
	"github.com/cascade-update/cascade/internal/ratelimit"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/trust"
)

// Options are what New needs besides the data directory's contents.
type Options struct {
	// Dir is the data directory made by Init. Required.
	Dir string
	// Config, if set, replaces DIR/server.json (the CLI loads it and
	// applies its flags).
	Config *Config
	// Store, if set, is used instead of opening Config's database; the
	// caller closes it.
	Store store.Store
	// Listener, if set, is served instead of listening on Config.Listen.
	Listener net.Listener
	Logger   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// CredentialTTL is how long an endpoint authentication is cached
	// (default 5s; negative: never).
	CredentialTTL time.Duration
	// SyncRetry is the delay before retrying a failed origin sync
	// (default a minute).
	SyncRetry time.Duration
}

// Server is an opened management server.
type Server struct {
	dir      string
	cfg      *Config
	st       store.Store
	ownStore bool
	// cl is the database's side of the site repository and the writer
	// role (nil for a Store without it: everything as one process).
	cl      store.Cluster
	log     *slog.Logger
	now     func() time.Time
	ln      net.Listener
	dirLock *filelock.Lock // held while the server uses its SQLite database

	site    *site
	sync    *syncer
	content *content
	ingest  *ingester
	creds   *credCache
	hub     *hub.Hub
	metrics *metrics
	view    *viewCache // the console's registry view (console_view.go)

	limits      Limits             // s.cfg.Limits with defaults
	enrollLimit *ratelimit.Limiter // enrollment requests per client address
	reports     *reportGate        // report uploads per endpoint and in total

	vendorRoot, siteRoot []byte
	cert                 tls.Certificate
	fp                   api.Fingerprint
	keys                 *keyCache // s.fp, the configured peers' and those recorded (api.EnrollResponse.ServerKeys)
	vendorFiles          *static.Handler
	siteFiles            *static.Handler
}

// New opens the server in o.Dir: its database (migrated), site
// repository, mirror trust store and certificate. On first start it
// stores a default policy (origin and server, standard sources) and the
// domain "default".
func New(ctx context.Context, o Options) (*Server, error) {
	s := &Server{dir: o.Dir, cfg: o.Config, st: o.Store, log: o.Logger, now: o.Now, ln: o.Listener}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.open(ctx, o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) open(ctx context.Context, o Options) error {
	var err error
	if s.cfg == nil {
		if s.cfg, err = LoadConfig(s.dir); err != nil {
			return err
		}
	}
	if s.st == nil {
		if err := s.lockSQLite(); err != nil {
			return err
		}
		if s.st, err = store.Open(ctx, s.cfg.DSN(s.dir), store.Options{Clock: s.now}); err != nil {
			return fmt.Errorf("open server: %w", err)
		}
		s.ownStore = true
	}
	s.site = &site{st: s.st, log: s.log, now: s.now, interval: time.Duration(s.cfg.RefreshInterval),
		kick: make(chan struct{}, 1), changed: make(chan struct{})}
	ropts := repo.Options{Now: s.now, Logger: s.log}
	if cl, ok := store.ClusterOf(s.st); ok {
		s.cl, s.site.cl = cl, cl
		ropts.Keys, ropts.Commit = s.keySource, s.site.commitHook
		if s.site.trust, err = openSiteTrust(s.dir, s.now, s.log); err != nil {
			return fmt.Errorf("open server: %w", err)
		}
	}
	rp, err := repo.Open(filepath.Join(s.dir, siteDir), ropts)
	if err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	s.site.repo = rp
	vt, err := trust.Open(filepath.Join(s.dir, vendorTrustDir), trust.Options{Kind: string(repo.Vendor), Now: s.now, Logger: s.log})
	if err != nil {
		return fmt.Errorf("open server: vendor trust store: %w", err)
	}
	if s.vendorRoot, err = os.ReadFile(filepath.Join(s.dir, vendorRootFile)); err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	if s.siteRoot, err = rp.TrustedRoot(); err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	if s.cert, s.fp, err = loadCert(path(s.dir, s.cfg.TLSCert), path(s.dir, s.cfg.TLSKey)); err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	s.keys = &keyCache{own: s.fp, peers: s.cfg.PeerKeys, cl: s.cl, now: s.now}
	if err := s.keys.record(ctx, s.cfg.URL); err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	if err := s.openFiles(rp); err != nil {
		return err
	}
	if err := s.wire(rp, vt, o); err != nil {
		return err
	}
	if err := s.bootstrap(ctx); err != nil {
		return err
	}
	return s.join(ctx)
}

// join brings the served site repository to the database's newest
// version and, if no other process is the writer, makes this one it (on
// SQLite it always is). A process whose copy cannot be brought up to date
// does not start: it would serve what the others do not.
func (s *Server) join(ctx context.Context) error {
	if s.cl == nil {
		return nil
	}
	if err := s.site.Follow(ctx); err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	w, ok, err := s.cl.TryWriter(ctx, s.holder())
	if err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	if ok {
		if err := s.becomeWriter(ctx, w, false); err != nil {
			return fmt.Errorf("open server: %w", err)
		}
	}
	return nil
}

// openSiteTrust opens the served site repository's trusted metadata,
// anchored, the first time, at the repository's first root.
func openSiteTrust(dir string, now func() time.Time, log *slog.Logger) (*trust.Store, error) {
	o := trust.Options{Kind: string(repo.Site), Now: now, Logger: log}
	td := filepath.Join(dir, siteTrustDir)
	if _, err := os.Stat(td); err == nil {
		return trust.Open(td, o)
	}
	root, err := os.ReadFile(filepath.Join(dir, siteDir, "published", string(repo.Site), "metadata", "1.root.json"))
	if err != nil {
		return nil, fmt.Errorf("site trust store: %w", err)
	}
	return trust.Init(td, root, o)
}

// lockSQLite takes the data directory's lock when the database is
// SQLite, which serves one server process: a second process on the same
// directory is refused (several processes share a PostgreSQL database).
// The lock is held until Close; the kernel drops it if the process dies.
func (s *Server) lockSQLite() error {
	if dsn := strings.ToLower(s.cfg.DSN(s.dir)); strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return nil
	}
	lk, err := filelock.TryLock(filepath.Join(s.dir, lockFile))
	if errors.Is(err, filelock.ErrLocked) {
		return fmt.Errorf("open server: another cascade server is running on %s (SQLite serves one server process; several need PostgreSQL, --database postgres://...)", s.dir)
	}
	if err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	s.dirLock = lk
	return nil
}

// openFiles opens the served trees.
func (s *Server) openFiles(rp *repo.Repo) error {
	var err error
	content := filepath.Join(s.dir, contentDir)
	if err := os.MkdirAll(filepath.Join(content, string(repo.Vendor)), 0o755); err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	if s.vendorFiles, err = static.New(content, static.Options{MutableMaxAge: time.Minute, Logger: s.log}); err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	if s.siteFiles, err = static.New(filepath.Dir(rp.PublishedDir()), static.Options{MutableMaxAge: time.Minute, Logger: s.log}); err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	return nil
}

// wire builds the services.
func (s *Server) wire(rp *repo.Repo, vt *trust.Store, o Options) error {
	ttl := o.CredentialTTL
	if ttl == 0 {
		ttl = 5 * time.Second
	}
	s.creds = &credCache{st: s.st, ttl: ttl, now: s.now, entries: map[store.Hash]credEntry{}}
	s.limits = s.cfg.Limits
	s.limits.defaults()
	s.enrollLimit = newEnrollLimiter(s.limits, s.now)
	s.reports = newReportGate(s.limits, s.now)
	proxy := http.ProxyFromEnvironment
	if s.cfg.Proxy != "" {
		pu, _ := url.Parse(s.cfg.Proxy) // validated with the config
		proxy = http.ProxyURL(pu)
	}
	fetcher := fetch.New(fetch.Options{Proxy: proxy, UserAgent: "cascade-server", Logger: s.log,
		ConnectTimeout: 10 * time.Second, ResponseHeaderTimeout: 30 * time.Second})
	s.sync = &syncer{st: s.st, trust: vt, fetcher: fetcher, origin: s.cfg.Origin, dir: filepath.Join(s.dir, contentDir),
		log: s.log, now: s.now, interval: time.Duration(s.cfg.SyncInterval), retry: o.SyncRetry, kick: make(chan struct{}, 1),
		server: s.cfg.URL}
	if s.cl != nil {
		s.sync.writer = func() bool { return s.site.Writer() != nil }
		s.sync.signal = func(ctx context.Context, p string) error { return s.st.Signal(ctx, store.TopicServer, p) }
	}
	hub, err := s.newHub()
	if err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	s.hub = hub
	s.content = &content{st: s.st, site: s.site, notify: hub, index: s.sync.localIndex, log: s.log}
	s.sync.content = s.content
	// One writer: it takes everything queued while its last batch was
	// being written, so batches grow with load. More writers made smaller
	// batches and fewer reports per second on both databases.
	s.ingest = newIngester(s.st, s.log, 1)
	s.metrics = newMetrics(s)
	s.sync.metrics, s.ingest.metrics = s.metrics, s.metrics
	s.view = newViewCache(s.registryView, s.now, s.log)
	return nil
}

// bootstrap stores the first policy and domain on a new database.
func (s *Server) bootstrap(ctx context.Context) error {
	_, err := s.st.CurrentPolicy(ctx)
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	doc := fmt.Sprintf("# The update-source policy (docs/policy.md): `cascade server policy set FILE` replaces it.\n"+
		"origin: %s\nserver: %s\n", s.cfg.Origin, s.cfg.URL)
	if _, err := s.st.PutPolicy(ctx, doc, "server bootstrap", 0); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("open server: store the first policy: %w", err)
	}
	if _, err := s.st.CreateDomain(ctx, "default"); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("open server: create the default domain: %w", err)
	}
	s.log.Info("stored the first policy and the domain \"default\"")
	return nil
}

// Close closes what New opened.
func (s *Server) Close() error {
	var err error
	if s.view != nil {
		s.view.close()
	}
	if s.site != nil {
		if w := s.site.Writer(); w != nil {
			s.site.dropWriter(w)
		}
	}
	for _, h := range []*static.Handler{s.vendorFiles, s.siteFiles} {
		if h != nil {
			err = errors.Join(err, h.Close())
		}
	}
	if s.ownStore && s.st != nil {
		err = errors.Join(err, s.st.Close())
	}
	if s.dirLock != nil {
		err = errors.Join(err, s.dirLock.Unlock())
		s.dirLock = nil
	}
	return err
}

// Fingerprint returns the served certificate's fingerprint.
func (s *Server) Fingerprint() api.Fingerprint { return s.fp }

// siteKeys returns the key fingerprints of the site's servers that
// endpoints pin: this server's first, then the configured peers', each
// once.
func siteKeys(own api.Fingerprint, peers []string) []string {
	keys := []string{own.String()}
	for _, p := range peers {
		fp, err := api.ParseFingerprint(p) // checked by Config.validate
		if err == nil && !slices.Contains(keys, fp.String()) {
			keys = append(keys, fp.String())
		}
	}
	return keys
}

// URL returns the server's base URL as configured.
func (s *Server) URL() string { return s.cfg.URL }

// Store returns the server's database.
func (s *Server) Store() store.Store { return s.st }

// Handler returns the server's HTTP handler: /vendor/, /site/ and the API.
func (s *Server) Handler() http.Handler { return s.bodyDeadline(s.routes()) }

// Run serves until ctx is cancelled, with every service under one
// supervisor, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln := s.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("server: listen: %w", err)
		}
	}
	srv := httpserver.NewServer(s.Handler(), s.log)
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12}
	s.log.Info("management server", "url", s.cfg.URL, "listen", ln.Addr().String(), "fingerprint", s.fp.String(),
		"database", redactDSN(s.cfg.DSN(s.dir)))
	services := []service{
		{name: "https", critical: true, run: func(ctx context.Context) error {
			return httpserver.Run(ctx, srv, httpserver.LimitPerAddress(ln, s.limits.ConnsPerAddress, s.log),
				httpserver.Options{Logger: s.log})
		}},
		{name: "ingest", critical: true, run: s.ingest.Run},
		{name: "sync", run: s.sync.Run},
		{name: "site", run: s.site.Run},
		{name: "prune", run: s.prune},
		{name: "notify", run: s.hub.Run},
	}
	if s.cl != nil {
		services = append(services, service{name: "writer", run: s.elect}, service{name: "follow", run: s.follow})
	}
	return supervise(ctx, s.log, services)
}

// prune deletes report, notification, sync and (on the writer) site
// repository history past its retention,
// at start and every PruneInterval.
func (s *Server) prune(ctx context.Context) error {
	t := time.NewTicker(time.Duration(s.cfg.PruneInterval))
	defer t.Stop()
	for {
		s.pruneOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pruneOnce deletes the history older than its retention.
func (s *Server) pruneOnce(ctx context.Context) {
	now := s.now()
	if n, err := s.st.PruneReports(ctx, now.Add(-time.Duration(s.cfg.ReportRetention))); err != nil {
		s.log.Error("prune reports", "err", err)
	} else if n > 0 {
		s.log.Info("pruned reports", "deleted", n)
	}
	if n, err := s.st.PruneNotifications(ctx, now.Add(-time.Duration(s.cfg.NotificationRetention))); err != nil {
		s.log.Error("prune notifications", "err", err)
	} else if n > 0 {
		s.log.Info("pruned notifications", "deleted", n)
	}
	if n, err := s.st.PruneSyncs(ctx, now.Add(-time.Duration(s.cfg.ReportRetention))); err != nil {
		s.log.Error("prune the sync log", "err", err)
	} else if n > 0 {
		s.log.Info("pruned the sync log", "deleted", n)
	}
	if res, ok, err := s.site.pruneSite(ctx, s.cfg.SiteKeepVersions, now.Add(-time.Duration(s.cfg.SiteRetention))); err != nil {
		s.log.Error("prune the site repository's history", "err", err)
	} else if ok && (res.Versions > 0 || res.Files > 0) {
		s.log.Info("pruned the site repository's history", "versions", res.Versions, "files", res.Files, "oldest_kept", res.Oldest)
	}
}
