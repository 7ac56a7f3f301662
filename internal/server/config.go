package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// Duration is a time.Duration written in JSON as a Go duration ("15m"):
// the type the repository settings use, so both files read alike.
type Duration = repo.Duration

// Config is the server's configuration, DIR/server.json, written by Init.
// Decoding is strict: unknown fields are errors. Relative paths are
// relative to DIR. Flags of `cascade server run` override some fields.
type Config struct {
	// Listen is the address the HTTPS listener binds (default ":8443").
	Listen string `json:"listen"`
	// URL is the server's base URL as endpoints reach it; it is the
	// default `server:` of the first policy and what the certificate's
	// names cover. Default: https://<host name>:<listen port>/.
	URL string `json:"url"`
	// Origin is the vendor origin to mirror. Required.
	Origin string `json:"origin"`
	// Proxy is the HTTP proxy used to reach the origin ("": the
	// HTTPS_PROXY, HTTP_PROXY and NO_PROXY environment variables).
	Proxy string `json:"proxy,omitempty"`
	// Database is "postgres://..." for PostgreSQL; "" is SQLite at
	// DIR/cascade.db. Security caveat: a password in the DSN is readable
	// by whoever reads this file (it is written 0600); prefer PGPASSFILE.
	Database string `json:"database,omitempty"`
	// TLSCert and TLSKey are the PEM certificate and key served; Init
	// generates a self-signed pair at tls/cert.pem and tls/key.pem.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// SyncInterval is how often the origin is mirrored (default 15m).
	SyncInterval Duration `json:"sync_interval,omitempty"`
	// RefreshInterval is how often the site repository's timestamp is
	// re-signed and the site documents are checked against the database
	// (default 1h; the timestamp is valid for a day).
	RefreshInterval Duration `json:"refresh_interval,omitempty"`
	// ReportRetention is how long update reports are kept (default 30
	// days; each endpoint's last report is always kept).
	ReportRetention Duration `json:"report_retention,omitempty"`
	// NotificationRetention is how long notifications are kept (default
	// 30 days).
	NotificationRetention Duration `json:"notification_retention,omitempty"`
	// SiteRetention and SiteKeepVersions bound the site repository's
	// history in the database: a signed version is pruned once it is
	// older than SiteRetention (default 7 days) and not one of the
	// newest SiteKeepVersions (default 20). The root metadata and every
	// file a kept version needs are always kept (docs/server.md).
	SiteRetention    Duration `json:"site_retention,omitempty"`
	SiteKeepVersions int      `json:"site_keep_versions,omitempty"`
	// PruneInterval is how often history is pruned (default 1h).
	PruneInterval Duration `json:"prune_interval,omitempty"`
	// AgentTimeout is how long clients wait for the update agents after
	// a notification (agents first, docs/notifications.md): clients are
	// notified when every notified agent has reported its run, or this
	// long after the notification, whichever comes first (default 5m).
	AgentTimeout Duration `json:"agent_timeout,omitempty"`
	// ConsoleNotSeen is after how long without contact the web console
	// counts an endpoint as not seen (default 7 days).
	ConsoleNotSeen Duration `json:"console_not_seen,omitempty"`
	// ConsoleIdle ends a console session after this long without a
	// request (default 30m); ConsoleAbsolute this long after sign-in,
	// whatever its use (default 12h).
	ConsoleIdle     Duration `json:"console_idle,omitempty"`
	ConsoleAbsolute Duration `json:"console_absolute,omitempty"`
	// NotifyPoll is how often the notification hub reads the database
	// for notifications made by other server processes, agents' reports
	// and expired agent timeouts (default 2s).
	NotifyPoll Duration `json:"notify_poll,omitempty"`
	// ReconnectGrace is how long after the server starts an update agent
	// that has not received a notification yet still holds the clients
	// back, as reconnecting rather than offline, unless it disconnected
	// from this process since it started (default 30s).
	ReconnectGrace Duration `json:"reconnect_grace,omitempty"`
	// KeySecret is the file holding the key secret under which the site
	// repository's online keys are sealed in a PostgreSQL database shared
	// by several server processes (default "key-secret"; the first server
	// on PostgreSQL writes it, `cascade server join --key-secret` copies
	// it). Unused on SQLite.
	KeySecret string `json:"key_secret,omitempty"`
	// WriterPoll is how often a server process that is not the writer
	// tries to become it (default 2s): the bound on a takeover after the
	// writer died, with PostgreSQL's release of its lock.
	WriterPoll Duration `json:"writer_poll,omitempty"`
	// FollowInterval is how often a process that is not the writer checks
	// the database for a new site version, besides being told of one by
	// the writer (default 10s).
	FollowInterval Duration `json:"follow_interval,omitempty"`
	// Limits bound what one client can make the server do
	// (docs/security.md, "Limits of the API").
	Limits Limits `json:"limits"`
	// PeerKeys are the key fingerprints ("sha256:...", as `cascade
	// server status` prints them) of the site's other management
	// servers, a server about to join included. The server sends them
	// with its own to endpoints at enrollment and in every status answer,
	// and endpoints that pin keys pin them all, so that they accept every
	// server of the site (docs/server.md, "Endpoints with several server
	// URLs").
	PeerKeys []string `json:"peer_keys,omitempty"`
}

// The files and directories of a server's data directory.
const (
	configFile     = "server.json"
	sqliteFile     = "cascade.db"
	lockFile       = "server.lock"  // held by the process using the SQLite database
	siteDir        = "site"         // the site repository (repo kind site)
	vendorTrustDir = "vendor-trust" // the mirror's trusted vendor metadata
	contentDir     = "content"      // served tree: content/vendor/...
	vendorRootFile = "vendor-root.json"
	tlsDir         = "tls"
	siteTrustDir   = "site-trust" // the materialised site repository's trusted metadata
	keySecretFile  = "key-secret" // seals the site keys in a shared database
)

// defaults fills zero fields.
func (c *Config) defaults() {
	def := func(d *Duration, v time.Duration) {
		if *d <= 0 {
			*d = Duration(v)
		}
	}
	if c.Listen == "" {
		c.Listen = ":8443"
	}
	def(&c.SyncInterval, 15*time.Minute)
	def(&c.RefreshInterval, time.Hour)
	def(&c.ReportRetention, 30*24*time.Hour)
	def(&c.NotificationRetention, 30*24*time.Hour)
	def(&c.AgentTimeout, 5*time.Minute)
	def(&c.NotifyPoll, 2*time.Second)
	def(&c.ReconnectGrace, 30*time.Second)
	def(&c.PruneInterval, time.Hour)
	def(&c.SiteRetention, 7*24*time.Hour)
	if c.SiteKeepVersions <= 0 {
		c.SiteKeepVersions = 20
	}
	def(&c.ConsoleIdle, 30*time.Minute)
	def(&c.ConsoleAbsolute, 12*time.Hour)
	def(&c.WriterPoll, 2*time.Second)
	def(&c.FollowInterval, 10*time.Second)
	if c.KeySecret == "" {
		c.KeySecret = keySecretFile
	}
	c.Limits.defaults()
	if c.TLSCert == "" && c.TLSKey == "" {
		c.TLSCert, c.TLSKey = filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
	}
}

// validate checks the configuration after defaults.
func (c *Config) validate() error {
	if !policy.SameURL(c.Origin, c.Origin) {
		return fmt.Errorf("origin: %q is not an absolute http(s) URL", c.Origin)
	}
	if !policy.SameURL(c.URL, c.URL) {
		return fmt.Errorf("url: %q is not an absolute http(s) URL", c.URL)
	}
	if c.Proxy != "" {
		if u, err := url.Parse(c.Proxy); err != nil || u.Host == "" {
			return fmt.Errorf("proxy: %q is not a URL", c.Proxy)
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q: %w", c.Listen, err)
	}
	if c.Database != "" && !isPostgres(c.Database) {
		return fmt.Errorf("database: %q is not a postgres:// URL (leave it empty for SQLite)", redactDSN(c.Database))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls_cert and tls_key go together")
	}
	for _, k := range c.PeerKeys {
		if _, err := api.ParseFingerprint(k); err != nil {
			return fmt.Errorf("peer_keys: %w", err)
		}
	}
	if time.Duration(c.SyncInterval) < time.Minute || time.Duration(c.RefreshInterval) < time.Minute {
		return errors.New("sync_interval and refresh_interval must be at least 1m")
	}
	if c.ConsoleIdle > c.ConsoleAbsolute {
		return fmt.Errorf("console_idle (%s) must not be longer than console_absolute (%s)",
			time.Duration(c.ConsoleIdle), time.Duration(c.ConsoleAbsolute))
	}
	return nil
}

func isPostgres(dsn string) bool {
	l := strings.ToLower(dsn)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// redactDSN hides the password of a database URL, in its user
// information or its query string (store.RedactDSN).
func redactDSN(dsn string) string { return store.RedactDSN(dsn) }

// LoadConfig reads DIR/server.json.
func LoadConfig(dir string) (*Config, error) {
	f, err := os.Open(filepath.Join(dir, configFile))
	if err != nil {
		return nil, fmt.Errorf("load server config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("load server config: %w", err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("server config %s: %w", filepath.Join(dir, configFile), err)
	}
	c.defaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("server config %s: %w", filepath.Join(dir, configFile), err)
	}
	return &c, nil
}

// save writes DIR/server.json (0600: it may hold a database password).
func (c *Config) save(dir string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("save server config: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, configFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save server config: %w", err)
	}
	return nil
}

// DSN returns the store DSN of a server in dir.
func (c *Config) DSN(dir string) string {
	if c.Database != "" {
		return c.Database
	}
	return "sqlite:" + filepath.Join(dir, sqliteFile)
}

// path resolves a configured path against dir.
func path(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
