package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/keyseal"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/trust"
)

// JoinOptions are the arguments of Join.
type JoinOptions struct {
	// Config is the new process's configuration: Database (a PostgreSQL
	// URL) is required; Listen, URL, Proxy and the TLS files are this
	// process's own (zero fields take their defaults, a certificate is
	// generated); Origin comes from the database.
	Config Config
	// KeySecret is the key secret file's content (the one the first
	// server wrote), which opens the site keys sealed in the database.
	KeySecret []byte
	Now       func() time.Time
	Logger    *slog.Logger
}

// JoinResult says what Join created.
type JoinResult struct {
	InitResult
	// SiteVersion is the site repository's version materialised.
	SiteVersion int64
	// SiteRootSHA256 is the hash of the site repository's first root,
	// as the database holds it: compare it with another server's
	// (`cascade server status`).
	SiteRootSHA256 string
}

// Join creates the data directory of another server process on the
// PostgreSQL database of a running one, in dir (missing or empty):
// server.json, the vendor root and the mirror's trust store, the site
// repository's settings and its newest signed state materialised from
// the database (verified, trusted from the database's first root), the
// key secret (checked against the sealed keys), and this process's own
// certificate. Nothing is shared with the other processes but the
// database.
func Join(ctx context.Context, dir string, o JoinOptions) (*JoinResult, error) {
	if o.Now == nil {
		return nil, errors.New("join server: Now is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !isPostgres(o.Config.Database) {
		return nil, errors.New("join server: --database must name the PostgreSQL database (postgres://...) of the running servers")
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("join server: %s is not empty", dir)
	}
	sec, err := keyseal.ParseSecret(o.KeySecret)
	if err != nil {
		return nil, fmt.Errorf("join server: %w", err)
	}
	st, err := store.Open(ctx, o.Config.Database, store.Options{Clock: o.Now})
	if err != nil {
		return nil, fmt.Errorf("join server: %w", err)
	}
	defer st.Close()
	cl, _ := store.ClusterOf(st)
	shared, err := joinShared(ctx, cl, sec)
	if err != nil {
		return nil, fmt.Errorf("join server: %w", err)
	}
	c := o.Config
	c.Origin = string(shared[sharedOrigin])
	generate, err := settle(dir, &c)
	if err != nil {
		return nil, fmt.Errorf("join server: %w", err)
	}
	res, err := joinFiles(ctx, dir, &c, cl, shared, o, generate)
	if err != nil {
		emptyDir(dir)
		return nil, fmt.Errorf("join server: %w", err)
	}
	return res, nil
}

// joinShared reads what a joining process needs from the database and
// checks that the key secret opens every sealed site key.
func joinShared(ctx context.Context, cl store.Cluster, sec *keyseal.Secret) (map[string][]byte, error) {
	if _, err := cl.SiteHead(ctx); errors.Is(err, store.ErrNotFound) {
		return nil, errors.New("the database holds no site repository yet: run `cascade server run` on the first server (made by `cascade server init --database ...`) first")
	} else if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range []string{sharedVendorRoot, sharedRepoJSON, sharedOrigin} {
		b, err := cl.Shared(ctx, name)
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
	for _, role := range siteKeyRoles {
		name := sharedKeyPrefix + role + ".pem"
		sealed, err := cl.Shared(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("the database holds no %s key: the first server shares its keys when it runs on PostgreSQL", role)
		}
		if err != nil {
			return nil, err
		}
		if _, err := sec.Open(name, sealed); err != nil {
			return nil, fmt.Errorf("the key secret given is not the one that sealed the site keys in the database: %w", err)
		}
	}
	return out, nil
}

func joinFiles(ctx context.Context, dir string, c *Config, cl store.Cluster, shared map[string][]byte, o JoinOptions, generate bool) (*JoinResult, error) {
	if err := checkRoot(shared[sharedVendorRoot]); err != nil {
		return nil, fmt.Errorf("vendor root in the database: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, vendorRootFile), shared[sharedVendorRoot], 0o644); err != nil {
		return nil, err
	}
	if _, err := trust.Init(filepath.Join(dir, vendorTrustDir), shared[sharedVendorRoot],
		trust.Options{Kind: string(repo.Vendor), Now: o.Now, Logger: o.Logger}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, contentDir), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, siteDir), 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, siteDir, "repo.json"), shared[sharedRepoJSON], 0o644); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(path(dir, c.KeySecret), o.KeySecret, 0o600); err != nil {
		return nil, err
	}
	root, err := cl.SiteFile(ctx, "metadata/1.root.json")
	if err != nil {
		return nil, fmt.Errorf("site root: %w", err)
	}
	ts, err := trust.Init(filepath.Join(dir, siteTrustDir), root, trust.Options{Kind: string(repo.Site), Now: o.Now, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("site trust store: %w", err)
	}
	head, err := cl.SiteHead(ctx)
	if err != nil {
		return nil, err
	}
	if err := materialise(ctx, cl, ts, head, filepath.Join(dir, siteDir, "published"), o.Logger); err != nil {
		return nil, err
	}
	if _, err := repo.Open(filepath.Join(dir, siteDir), repo.Options{Now: o.Now, Logger: o.Logger}); err != nil {
		return nil, err
	}
	res := &JoinResult{InitResult: InitResult{Config: c}, SiteVersion: head.Version, SiteRootSHA256: trust.RootSHA256(root)}
	if generate {
		dns, ips := certNames(c.URL, c.Listen)
		res.Fingerprint, err = GenerateCert(path(dir, c.TLSCert), path(dir, c.TLSKey), dns, ips, o.Now())
	} else {
		_, res.Fingerprint, err = loadCert(path(dir, c.TLSCert), path(dir, c.TLSKey))
	}
	if err != nil {
		return nil, err
	}
	if err := c.save(dir); err != nil {
		return nil, err
	}
	return res, nil
}
