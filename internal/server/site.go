package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/sitedoc"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/trust"
)

// site keeps the site repository's domain_settings items
// (docs/site-repository.md) in line with the database: the policy, the
// deployment caps, and each domain's settings and program approvals.
// Every change the admin API makes is followed by Publish, which signs
// the items whose content changed in one commit; Run also reconciles on a
// schedule (so a publish that failed after the database write is retried)
// and re-signs the timestamp so it never expires.
//
// With a store.Cluster (cluster.go) the database holds the signed states:
// only the writer signs, and a process that is not the writer asks it to
// publish and waits for the new state to reach its own copy.
type site struct {
	repo     *repo.Repo
	st       store.Store
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration
	// cl is the database's side of the site repository; nil: the
	// repository lives in the data directory only (a test's Store).
	cl store.Cluster
	// trust is the served copy's trusted metadata (with cl).
	trust *trust.Store
	// publishWait bounds how long a process that is not the writer waits
	// for the writer to publish a change (default 30s).
	publishWait time.Duration
	// kick asks Run to reconcile now.
	kick chan struct{}

	mu sync.Mutex // one publish or materialisation at a time in this process
	// writer is this process's hold on the writer role (nil: another
	// process writes; always set without cl).
	writer store.Writer
	// changed is closed (and replaced) when the served copy changes.
	changed chan struct{}
}

// siteCategory is the category of every item the server publishes.
const siteCategory = string(category.DomainSettings)

// siteDoc is the desired content of one item.
type siteDoc struct {
	file string
	data []byte
}

// documents renders every item from the database.
func (s *site) documents(ctx context.Context) (map[string]siteDoc, error) {
	docs := map[string]siteDoc{}
	p, err := s.st.CurrentPolicy(ctx)
	switch {
	case err == nil:
		docs[sitedoc.PolicyItem] = siteDoc{sitedoc.PolicyFile, []byte(p.Document)}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	comps, err := s.st.ListComponents(ctx)
	if err != nil {
		return nil, err
	}
	dep, err := json.Marshal(sitedoc.Deployment{Components: deploymentCaps(comps)})
	if err != nil {
		return nil, err
	}
	docs[sitedoc.DeploymentItem] = siteDoc{sitedoc.DeploymentFile, dep}
	domains, err := s.st.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	approvals, err := s.st.ProgramApprovals(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, d := range domains {
		if !validDomainName(d.Name) {
			s.log.Warn("domain name cannot be published as a site item; rename it", "domain", d.Name)
			continue
		}
		set, err := s.st.DomainSettings(ctx, d.Name)
		if err != nil {
			return nil, err
		}
		progs := map[string]string{}
		for _, a := range approvals {
			if a.Domain == d.Name {
				progs[a.Program] = a.Version
			}
		}
		b, err := json.Marshal(sitedoc.DomainSettings{Settings: set.Document, Programs: progs})
		if err != nil {
			return nil, err
		}
		docs[sitedoc.DomainItem(d.Name)] = siteDoc{sitedoc.SettingsFile, b}
	}
	return docs, nil
}

// deploymentCaps returns, for each component held back or deployed at a
// version other than the newest synced, the newest version endpoints may
// install.
func deploymentCaps(comps []store.ComponentState) map[string]string {
	caps := map[string]string{}
	for _, c := range comps {
		if c.Deployed != "" && (c.Held || c.Deployed != c.Latest) {
			caps[c.Name] = c.Deployed
		}
	}
	return caps
}

// Publish signs, in one commit, every item whose published content
// differs from the database's; items of deleted domains get an empty
// document. It returns what it published. In a process that is not the
// writer it asks the writer to, and waits until its own copy holds the
// documents.
func (s *site) Publish(ctx context.Context) (api.Published, error) {
	s.mu.Lock()
	if s.cl != nil && s.writer == nil {
		s.mu.Unlock()
		return s.forward(ctx)
	}
	defer s.mu.Unlock()
	out, items, err := s.pendingLocked(ctx)
	if err != nil || len(items) == 0 {
		return out, err
	}
	res, err := s.repo.Publish(ctx, items...)
	if errors.Is(err, store.ErrConflict) && s.cl != nil {
		// The database moved on without this copy (it was behind):
		// catch up and publish what is still missing.
		if _, merr := s.materialiseLocked(ctx); merr != nil {
			return api.Published{Items: map[string]string{}}, fmt.Errorf("publish site documents: %w", err)
		}
		if out, items, err = s.pendingLocked(ctx); err != nil || len(items) == 0 {
			return out, err
		}
		res, err = s.repo.Publish(ctx, items...)
	}
	if err != nil {
		return api.Published{Items: map[string]string{}}, fmt.Errorf("publish site documents: %w", err)
	}
	out.Timestamp = res.Timestamp
	s.log.Info("published site documents", "items", slices.Sorted(maps.Keys(out.Items)), "timestamp", res.Timestamp)
	return out, nil
}

// pendingLocked returns the items whose published content differs from
// the database's, at their next versions (and those versions in out).
func (s *site) pendingLocked(ctx context.Context) (out api.Published, items []repo.Item, err error) {
	out = api.Published{Items: map[string]string{}}
	docs, err := s.documents(ctx)
	if err != nil {
		return out, nil, fmt.Errorf("publish site documents: %w", err)
	}
	idx, err := s.repo.Index(siteCategory)
	if err != nil {
		return out, nil, fmt.Errorf("publish site documents: %w", err)
	}
	empty, _ := json.Marshal(sitedoc.DomainSettings{Settings: json.RawMessage("{}"), Programs: map[string]string{}})
	for name := range idx.Items {
		if _, ok := docs[name]; !ok && len(name) > len("domain.") && name[:len("domain.")] == "domain." {
			docs[name] = siteDoc{sitedoc.SettingsFile, empty} // the domain was deleted
		}
	}
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		d := docs[name]
		cur, ok := idx.Items[name]
		if ok && s.published(name, cur.Version, d) {
			continue
		}
		v := nextVersion(cur.Version, ok)
		items = append(items, repo.Item{Category: siteCategory, Name: name, Version: v,
			Files: []repo.File{{Name: d.file, Data: d.data}}})
		out.Items[name] = v
	}
	return out, items, nil
}

// forward has the writer publish the database's documents and waits, up
// to publishWait, until this process's copy holds them.
func (s *site) forward(ctx context.Context) (api.Published, error) {
	wait := s.publishWait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var asked []string
	var lastAsk time.Time
	for {
		s.mu.Lock()
		changed := s.changed
		_, err := s.materialiseLocked(ctx)
		var pending api.Published
		var items []repo.Item
		if err == nil {
			pending, items, err = s.pendingLocked(ctx)
		}
		_, ts := s.localTimestamp()
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			return api.Published{Items: map[string]string{}}, err
		}
		if err == nil && len(items) == 0 {
			out := api.Published{Items: map[string]string{}}
			if idx, err := s.repo.Index(siteCategory); err == nil && len(asked) > 0 {
				for _, name := range asked {
					out.Items[name] = idx.Items[name].Version
				}
				out.Timestamp = ts
			}
			return out, nil
		}
		if asked == nil {
			asked = slices.Sorted(maps.Keys(pending.Items))
		}
		if time.Since(lastAsk) > 5*time.Second { // again, in case the writer changed
			if err := s.st.Signal(ctx, store.TopicServer, sigPublish); err != nil && ctx.Err() == nil {
				return api.Published{Items: map[string]string{}}, fmt.Errorf("publish site documents: ask the writer: %w", err)
			}
			lastAsk = time.Now()
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return api.Published{Items: map[string]string{}}, fmt.Errorf(
				"publish site documents: the writing server process did not publish them within %s (they are stored; it publishes them at its next reconcile)", wait)
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// Follow brings the served copy to the database's newest version unless
// this process is the writer (whose copy is the newest).
func (s *site) Follow(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl == nil || s.writer != nil {
		return nil
	}
	ok, err := s.materialiseLocked(ctx)
	if ok && err == nil {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return err
}

// Writer returns this process's hold on the writer role, or nil.
func (s *site) Writer() store.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writer
}

// dropWriter gives the hold w up.
func (s *site) dropWriter(w store.Writer) {
	s.mu.Lock()
	if s.writer == w {
		s.writer = nil
	}
	s.mu.Unlock()
	if err := w.Release(); err != nil {
		s.log.Warn("release the writer role", "err", err)
	}
}

// Kick asks Run to reconcile as soon as it can.
func (s *site) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// published reports whether version ver of item name holds exactly d: its
// content-addressed file (targets/<dir>/<sha256>.<file>) exists.
func (s *site) published(name, ver string, d siteDoc) bool {
	sum := sha256.Sum256(d.data)
	p := filepath.Join(s.repo.PublishedDir(), "targets", siteCategory, name, ver, hex.EncodeToString(sum[:])+"."+d.file)
	fi, err := os.Stat(p)
	return err == nil && fi.Size() == int64(len(d.data))
}

// nextVersion returns the version after cur: versions the server
// publishes are 1, 2, 3, ...
func nextVersion(cur string, exists bool) string {
	if !exists {
		return "1"
	}
	n, err := strconv.ParseUint(cur, 10, 63)
	if err != nil {
		return cur + ".1" // not one of ours: anything appended is newer
	}
	return strconv.FormatUint(n+1, 10)
}

// Refresh re-signs the timestamp (and any role near expiry); only the
// writer does.
func (s *site) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl != nil && s.writer == nil {
		return nil
	}
	if _, err := s.repo.Refresh(ctx, s.now()); err != nil {
		return fmt.Errorf("refresh site repository: %w", err)
	}
	return nil
}

// Run reconciles and refreshes at once, then every interval and when
// kicked (a process that is not the writer leaves both to the writer),
// until ctx is cancelled. Failures are logged and retried at the next
// tick.
func (s *site) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	refreshed := time.Time{}
	for {
		if s.cl == nil || s.Writer() != nil {
			if _, err := s.Publish(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("site reconcile", "err", err)
			}
			// A kick reconciles; the timestamp is re-signed on schedule
			// (and by the first run of a new writer).
			if time.Since(refreshed) >= s.interval/2 {
				if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
					s.log.Error("site refresh", "err", err)
				} else {
					refreshed = time.Now()
				}
			}
		} else {
			refreshed = time.Time{}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.kick:
		}
	}
}

// Status reports the site repository's timestamp and warnings.
func (s *site) Status() (api.RepoStatus, error) {
	st, err := s.repo.Status(s.now())
	if err != nil {
		return api.RepoStatus{}, err
	}
	out := api.RepoStatus{Warnings: st.Warnings()}
	for _, r := range st.Roles {
		if r.Role == "timestamp" {
			out.Timestamp, out.Expires = r.Version, r.Expires
		}
	}
	return out, nil
}

// validDomainName reports whether a domain name can name a site item
// "domain.<name>": 1-121 letters, digits, '.', '_' or '-', starting with
// a letter or digit.
func validDomainName(s string) bool {
	if s == "" || len(s) > 128-len("domain.") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if (i == 0 && !alnum) || (!alnum && c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}
