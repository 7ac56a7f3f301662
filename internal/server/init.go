package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/trust"
)

// InitOptions are the arguments of Init.
type InitOptions struct {
	// Config is the configuration to write; Origin is required, zero
	// fields take their defaults (URL from the host name and Listen).
	Config Config
	// VendorRoot is the vendor repository's initial root.json, obtained
	// out of band from the vendor: the trust anchor of the mirror and of
	// every endpoint.
	VendorRoot []byte
	// SiteBins is the number of hash bins of the site repository (default
	// 64: it holds a few documents per domain).
	SiteBins int
	Now      func() time.Time
	Logger   *slog.Logger
}

// InitResult says what Init created.
type InitResult struct {
	Config *Config
	// Fingerprint is the served certificate's (given or generated).
	Fingerprint api.Fingerprint
}

// Init creates a server data directory in dir, which must be missing or
// empty: server.json, the site repository with new keys, the mirror's
// trust store anchored at the vendor root, and, unless a certificate is
// given, a self-signed certificate. The database is created and migrated
// when the server first runs.
func Init(dir string, o InitOptions) (*InitResult, error) {
	if o.Now == nil {
		return nil, errors.New("init server: Now is required")
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("init server: %s is not empty", dir)
	}
	if err := checkRoot(o.VendorRoot); err != nil {
		return nil, fmt.Errorf("init server: vendor root: %w", err)
	}
	c := o.Config
	generate, err := settle(dir, &c)
	if err != nil {
		return nil, fmt.Errorf("init server: %w", err)
	}
	res, err := initFiles(dir, &c, o, generate)
	if err != nil {
		emptyDir(dir)
		return nil, err
	}
	return res, nil
}

// settle completes c (its defaults, the URL from the listen address) and
// checks it, then creates dir. generate says that no certificate was
// given (--tls-cert, --tls-key): the server makes its own.
func settle(dir string, c *Config) (generate bool, err error) {
	generate = c.TLSCert == "" && c.TLSKey == ""
	c.defaults()
	if c.URL == "" {
		c.URL = defaultURL(c.Listen)
	}
	if err := c.validate(); err != nil {
		return false, err
	}
	return generate, os.MkdirAll(dir, 0o700)
}

// emptyDir removes what dir holds: a failed init or join leaves nothing.
func emptyDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

func initFiles(dir string, c *Config, o InitOptions, generate bool) (*InitResult, error) {
	bins := o.SiteBins
	if bins == 0 {
		bins = 64
	}
	ro := repo.Options{Now: o.Now, Logger: o.Logger}
	if _, err := repo.Init(filepath.Join(dir, siteDir), repo.InitOptions{Options: ro,
		Settings: repo.Settings{Kind: repo.Site, Bins: bins}}); err != nil {
		return nil, fmt.Errorf("init server: site repository: %w", err)
	}
	if _, err := trust.Init(filepath.Join(dir, vendorTrustDir), o.VendorRoot,
		trust.Options{Kind: string(repo.Vendor), Now: o.Now, Logger: o.Logger}); err != nil {
		return nil, fmt.Errorf("init server: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, vendorRootFile), o.VendorRoot, 0o644); err != nil {
		return nil, fmt.Errorf("init server: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, contentDir), 0o755); err != nil {
		return nil, fmt.Errorf("init server: %w", err)
	}
	res := &InitResult{Config: c}
	var err error
	if generate {
		dns, ips := certNames(c.URL, c.Listen)
		res.Fingerprint, err = GenerateCert(path(dir, c.TLSCert), path(dir, c.TLSKey), dns, ips, o.Now())
	} else {
		_, res.Fingerprint, err = loadCert(path(dir, c.TLSCert), path(dir, c.TLSKey))
	}
	if err != nil {
		return nil, fmt.Errorf("init server: %w", err)
	}
	if err := c.save(dir); err != nil {
		return nil, fmt.Errorf("init server: %w", err)
	}
	return res, nil
}

// defaultURL is https://<host>:<port>/ for a listen address: its host, or
// the machine's host name when it binds every interface.
func defaultURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "localhost"
		}
	}
	return "https://" + net.JoinHostPort(host, port) + "/"
}

// checkRoot checks that data is a TUF root.json, saying what it is
// instead when it is not (another file given by mistake).
func checkRoot(data []byte) error {
	const want = "want the vendor repository's root.json (`cascade origin init` writes published/vendor/metadata/1.root.json)"
	var doc struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("not a JSON file (%s)", want)
	}
	if doc.Signed.Type != "root" {
		if doc.Signed.Type != "" {
			return fmt.Errorf("a TUF %s metadata file, not a root (%s)", doc.Signed.Type, want)
		}
		return fmt.Errorf("not TUF metadata (%s)", want)
	}
	if _, err := metadata.Root().FromBytes(data); err != nil {
		return fmt.Errorf("invalid root.json: %w", err)
	}
	return nil
}
