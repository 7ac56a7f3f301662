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
)

// site keeps the site repository's domain_settings items
// (docs/site-repository.md) in line with the database: the policy, the
// deployment caps, and each domain's settings and program approvals.
// Every change the admin API makes is followed by Publish, which signs
// the items whose content changed in one commit; Run also reconciles on a
// schedule (so a publish that failed after the database write is retried)
// and re-signs the timestamp so it never expires.
type site struct {
	repo     *repo.Repo
	st       store.Store
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration

	mu sync.Mutex // one publish at a time in this process
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
// document. It returns what it published.
func (s *site) Publish(ctx context.Context) (api.Published, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := api.Published{Items: map[string]string{}}
	docs, err := s.documents(ctx)
	if err != nil {
		return out, fmt.Errorf("publish site documents: %w", err)
	}
	idx, err := s.repo.Index(siteCategory)
	if err != nil {
		return out, fmt.Errorf("publish site documents: %w", err)
	}
	empty, _ := json.Marshal(sitedoc.DomainSettings{Settings: json.RawMessage("{}"), Programs: map[string]string{}})
	for name := range idx.Items {
		if _, ok := docs[name]; !ok && len(name) > len("domain.") && name[:len("domain.")] == "domain." {
			docs[name] = siteDoc{sitedoc.SettingsFile, empty} // the domain was deleted
		}
	}
	var items []repo.Item
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
	if len(items) == 0 {
		return out, nil
	}
	res, err := s.repo.Publish(ctx, items...)
	if err != nil {
		return api.Published{Items: map[string]string{}}, fmt.Errorf("publish site documents: %w", err)
	}
	out.Timestamp = res.Timestamp
	s.log.Info("published site documents", "items", slices.Sorted(maps.Keys(out.Items)), "timestamp", res.Timestamp)
	return out, nil
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

// Refresh re-signs the timestamp (and any role near expiry).
func (s *site) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.repo.Refresh(ctx, s.now()); err != nil {
		return fmt.Errorf("refresh site repository: %w", err)
	}
	return nil
}

// Run reconciles and refreshes at once, then every interval, until ctx is
// cancelled. Failures are logged and retried at the next tick.
func (s *site) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if _, err := s.Publish(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("site reconcile", "err", err)
		}
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("site refresh", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
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
