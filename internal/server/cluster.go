package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/keyseal"
	"github.com/cascade-update/cascade/internal/mirror"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/trust"
)

// Several server processes share one database and nothing else. The
// database holds the site repository's signed states (store.Cluster):
// the writer (one process, chosen by the database) signs a new state
// into its own copy and records it in the database before it makes it
// visible (repo.Options.Commit), and every other process materialises the
// newest state into its own data directory through internal/mirror,
// verified against its trusted site metadata, timestamp last, before it
// serves it.

// Names of the values the processes share (store.Cluster.Shared).
const (
	sharedVendorRoot = "vendor-root.json"
	sharedRepoJSON   = "site/repo.json"
	sharedOrigin     = "config/origin"
	sharedKeyPrefix  = "site/keys/" // + role + ".pem", sealed under the key secret
)

// siteKeyRoles are the site repository's online keys: what a writer needs
// (the root key stays with the operator).
var siteKeyRoles = []string{"targets", "snapshot", "timestamp", "bins"}

// Signals between the processes (store.Signals, topic store.TopicServer).
const (
	sigSite    = "site"    // "site N": version N was committed
	sigVendor  = "vendor"  // "vendor N": the writer mirrored vendor timestamp N
	sigPublish = "publish" // a process changed the database: the writer should publish
	sigSync    = "sync"    // an administrator asked a process for a sync
)

// dbTransport serves the site repository held in the database as a
// static tree under /site/, for mirror.Copy: timestamp.json is head's.
type dbTransport struct {
	cl   store.Cluster
	head store.SiteVersion
}

func (t *dbTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p, ok := strings.CutPrefix(req.URL.Path, "/site/")
	var body []byte
	var err error
	switch {
	case !ok || req.Method != http.MethodGet:
		err = store.ErrNotFound
	case p == "metadata/timestamp.json":
		body = t.head.Timestamp
	default:
		body, err = t.cl.SiteFile(req.Context(), p)
	}
	resp := &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Request: req}
	switch {
	case errors.Is(err, store.ErrNotFound):
		resp.StatusCode, resp.Status, body = http.StatusNotFound, "404 Not Found", nil
	case err != nil:
		return nil, fmt.Errorf("read the site repository from the database: %w", err)
	}
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// localTimestamp returns the served timestamp.json and its version (0 if
// there is none).
func (s *site) localTimestamp() ([]byte, int64) {
	b, err := os.ReadFile(filepath.Join(s.repo.PublishedDir(), "metadata", "timestamp.json"))
	if err != nil {
		return nil, 0
	}
	var doc struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return b, 0
	}
	return b, doc.Signed.Version
}

// materialiseLocked brings the served copy to the database's newest
// version, verified: it reports whether the copy changed. s.mu is held.
func (s *site) materialiseLocked(ctx context.Context) (bool, error) {
	head, err := s.cl.SiteHead(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // nothing recorded yet: the first writer seeds it
	}
	if err != nil {
		return false, fmt.Errorf("materialise the site repository: %w", err)
	}
	local, lv := s.localTimestamp()
	if bytes.Equal(local, head.Timestamp) {
		return false, nil
	}
	root, err := s.cl.SiteFile(ctx, "metadata/1.root.json")
	if err != nil {
		return false, fmt.Errorf("materialise the site repository: %w", err)
	}
	if own, err := s.repo.TrustedRoot(); err == nil && !bytes.Equal(own, root) {
		return false, fmt.Errorf("materialise the site repository: the site repository in %s is not the one in the database (its keys are another `cascade server init`'s): make this server's data directory with `cascade server join`",
			s.repo.Dir())
	}
	if lv > head.Version {
		return false, fmt.Errorf("materialise the site repository: the copy in %s (timestamp version %d) is newer than the database's (%d): was the database restored from an older backup? (docs/server.md, Several server processes)",
			s.repo.Dir(), lv, head.Version)
	}
	return true, materialise(ctx, s.cl, s.trust, head, filepath.Dir(s.repo.PublishedDir()), s.log)
}

// materialise copies head from the database into dir/site/, verified
// against the trusted metadata ts, timestamp.json last.
func materialise(ctx context.Context, cl store.Cluster, ts *trust.Store, head store.SiteVersion, dir string, log *slog.Logger) error {
	f := fetch.New(fetch.Options{Transport: &dbTransport{cl: cl, head: head}, MinRate: -1})
	res, err := mirror.Copy(ctx, mirror.Options{Store: ts, Fetcher: f, Dir: dir, Prune: true,
		Source: trust.Source{Name: "the database's site repository", Base: "http://database.invalid/"}})
	if err != nil {
		return fmt.Errorf("materialise site version %d: %w", head.Version, err)
	}
	log.Info("materialised the site repository from the database", "version", res.Timestamp, "writer", head.Writer,
		"targets_fetched", res.Fetched)
	return nil
}

// seedLocked records the served copy as the database's first site version
// when the database holds none (the first server process on a database,
// or one made before the database held the site repository). s.mu is held
// and this process is the writer.
func (s *site) seedLocked(ctx context.Context) error {
	if _, err := s.cl.SiteHead(ctx); !errors.Is(err, store.ErrNotFound) {
		return err
	}
	ts, v := s.localTimestamp()
	if v == 0 {
		return fmt.Errorf("seed the site repository: %s has no timestamp.json", s.repo.PublishedDir())
	}
	files := map[string][]byte{}
	base := s.repo.PublishedDir()
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") || d.Name() == "timestamp.json" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return fmt.Errorf("seed the site repository: %w", err)
	}
	if err := s.writer.CommitSite(ctx, store.SiteCommit{Version: v, Timestamp: ts, Files: files}); err != nil {
		return fmt.Errorf("seed the site repository: %w", err)
	}
	s.log.Info("recorded the site repository in the database", "version", v, "files", len(files))
	return nil
}

// commitHook is repo.Options.Commit: the new state goes to the database
// first, through the writer's hold, so a process that is not (or no
// longer) the writer cannot make one.
func (s *site) commitHook(ctx context.Context, c repo.Commit) error {
	if s.cl == nil {
		return nil
	}
	if s.writer == nil {
		return errors.New("this server process is not the writer")
	}
	return s.writer.CommitSite(ctx, store.SiteCommit{Previous: c.Previous, Version: c.Timestamp,
		Timestamp: c.TimestampJSON, Files: c.Files})
}

// keySource is repo.Options.Keys: a key in DIR/site/keys, else the one
// sealed in the database, opened with the key secret.
func (s *Server) keySource(role string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, siteDir, "keys", role+".pem"))
	if err == nil || !errors.Is(err, os.ErrNotExist) || s.cl == nil {
		return b, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sealed, err := s.cl.Shared(ctx, sharedKeyPrefix+role+".pem")
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("the %s key is neither in %s nor in the database: %w", role,
			filepath.Join(s.dir, siteDir, "keys"), os.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	sec, err := s.keySecret(false)
	if err != nil {
		return nil, err
	}
	return sec.Open(sharedKeyPrefix+role+".pem", sealed)
}

// keySecret reads the key secret; with create, a missing one is made.
func (s *Server) keySecret(create bool) (*keyseal.Secret, error) {
	name := path(s.dir, s.cfg.KeySecret)
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) && create {
		sec, file, err := keyseal.NewSecret()
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(name, file, 0o600); err != nil {
			return nil, fmt.Errorf("write the key secret: %w", err)
		}
		s.log.Warn("made the key secret that seals the site keys in the database: copy it to each server you join, and keep a copy offline",
			"file", name)
		return sec, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the key secret (`cascade server join --key-secret`): %w", err)
	}
	return keyseal.ParseSecret(b)
}

// share records, once, what a joining process needs: the vendor root,
// the site repository's settings, the origin, and on PostgreSQL the
// online site keys this process holds, sealed under the key secret.
func (s *Server) share(ctx context.Context) error {
	for name, file := range map[string]string{sharedVendorRoot: vendorRootFile, sharedRepoJSON: filepath.Join(siteDir, "repo.json")} {
		b, err := os.ReadFile(filepath.Join(s.dir, file))
		if err != nil {
			return fmt.Errorf("share %s: %w", name, err)
		}
		if err := s.cl.PutShared(ctx, name, b, true); err != nil {
			return err
		}
	}
	if err := s.cl.PutShared(ctx, sharedOrigin, []byte(s.cfg.Origin), false); err != nil {
		return err
	}
	if !isPostgres(s.cfg.DSN(s.dir)) {
		return nil // one process: nobody to share the keys with
	}
	var sec *keyseal.Secret
	for _, role := range siteKeyRoles {
		pem, err := os.ReadFile(filepath.Join(s.dir, siteDir, "keys", role+".pem"))
		if errors.Is(err, os.ErrNotExist) {
			continue // this process has it from the database
		}
		if err != nil {
			return fmt.Errorf("share the %s key: %w", role, err)
		}
		name := sharedKeyPrefix + role + ".pem"
		if _, err := s.cl.Shared(ctx, name); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if sec == nil {
			if sec, err = s.keySecret(true); err != nil {
				return err
			}
		}
		sealed, err := sec.Seal(name, pem)
		if err != nil {
			return err
		}
		if err := s.cl.PutShared(ctx, name, sealed, true); err != nil {
			return err
		}
	}
	return nil
}

// holder names this process in the database (site versions' writer).
func (s *Server) holder() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s (%s, pid %d)", s.cfg.URL, h, os.Getpid())
}

// becomeWriter makes this process the writer with w: the served copy is
// brought to the database's newest version (or seeds it) before anything
// is signed. On failure w is released. A takeover (not at start, where
// the services start with a sync and a reconcile anyway) asks for a sync
// and a reconcile at once, which finish what the last writer was doing.
func (s *Server) becomeWriter(ctx context.Context, w store.Writer, takeover bool) error {
	st := s.site
	st.mu.Lock()
	st.writer = w
	err := st.seedLocked(ctx)
	if err == nil {
		_, err = st.materialiseLocked(ctx)
	}
	if err != nil {
		st.writer = nil
	}
	st.mu.Unlock()
	if err != nil {
		w.Release()
		return err
	}
	if err := s.share(ctx); err != nil {
		s.log.Error("record what joining server processes need", "err", err)
	}
	s.log.Info("this server process is the writer: it syncs from the origin, signs and refreshes the site repository")
	if takeover {
		st.Kick()
		s.sync.Kick()
	}
	return nil
}

// elect keeps trying to become the writer while another process is, and
// notices when this process stops being it, until ctx is cancelled (then
// it gives the hold up, so another process takes over at once).
func (s *Server) elect(ctx context.Context) error {
	poll := time.Duration(s.cfg.WriterPoll)
	for {
		if w := s.site.Writer(); w != nil {
			select {
			case <-ctx.Done():
				s.site.dropWriter(w)
				return nil
			case <-w.Lost():
				s.site.dropWriter(w)
				s.log.Warn("this server process is no longer the writer (its database session ended)")
			}
		}
		w, ok, err := s.cl.TryWriter(ctx, s.holder())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("try to become the writer", "err", err)
		case ok:
			if err := s.becomeWriter(ctx, w, true); err != nil && ctx.Err() == nil {
				s.log.Error("become the writer", "err", err)
			}
		}
		if s.site.Writer() != nil {
			continue
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// follow keeps the served site repository at the database's newest
// version while this process is not the writer, when told by a signal and
// every FollowInterval, and passes the other signals on.
func (s *Server) follow(ctx context.Context) error {
	kick := make(chan struct{}, 1)
	go func() {
		for ctx.Err() == nil {
			err := s.st.Listen(ctx, store.TopicServer, func(p string) {
				name, arg, _ := strings.Cut(p, " ")
				writer := s.site.Writer() != nil
				switch {
				case name == sigSite && !writer:
					select {
					case kick <- struct{}{}:
					default:
					}
				case name == sigVendor && !writer:
					if v, err := strconv.ParseInt(arg, 10, 64); err == nil && v > s.sync.vendorTimestamp() {
						s.sync.Kick()
					}
				case name == sigPublish && writer:
					s.site.Kick()
				case name == sigSync && writer:
					s.sync.Kick()
				}
			})
			if errors.Is(err, errors.ErrUnsupported) {
				return // one process (SQLite): nobody to listen to
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn("listening for the other server processes", "err", err)
				t := time.NewTimer(time.Second)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
			select { // signals may have been missed
			case kick <- struct{}{}:
			default:
			}
		}
	}()
	t := time.NewTicker(time.Duration(s.cfg.FollowInterval))
	defer t.Stop()
	for {
		if err := s.site.Follow(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("follow the site repository", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-kick:
		}
	}
}
