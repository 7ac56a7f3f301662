package update

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/sitedoc"
	"github.com/cascade-update/cascade/internal/trust"
	"github.com/cascade-update/cascade/internal/version"
)

// candidate is a source whose probe succeeded: its verified view, and the
// version of the category it would install.
type candidate struct {
	source   string // the source, as in reports
	url      string // its URL, as in reports (set when it has several)
	key      string // the source, or its URL, as errors name it
	store    *trust.Store
	view     *trust.View
	manifest install.Manifest
	// targets maps each install path to its target path and description.
	targets map[string]target
}

type target struct {
	path string
	tf   *metadata.TargetFiles
}

// cachedError is a connection-level failure remembered from earlier in
// the run (or from the Health cache), returned without contacting the
// source again.
type cachedError struct{ err error }

func (e *cachedError) Error() string { return "not contacted again: " + e.err.Error() }
func (e *cachedError) Unwrap() error { return e.err }

// probe checks whether a source can update cat: it verifies the source's
// metadata and index, checks freshness, and resolves the manifest.
func (ru *run) probe(ctx context.Context, cat category.Category, tr try) (*candidate, error) {
	if tr.err != nil {
		return nil, tr.err
	}
	if err := ru.remembered(tr.key); err != nil {
		return nil, err
	}
	c, err := ru.probeSource(ctx, cat, tr)
	if failure.ConnectionLevel(err) {
		ru.remember(tr.key, err)
	}
	return c, err
}

func (ru *run) remembered(key string) error {
	ru.mu.Lock()
	err := ru.failed[key]
	ru.mu.Unlock()
	if err == nil && ru.r.o.Health != nil {
		err = ru.r.o.Health.Failed(key)
	}
	if err != nil {
		return &cachedError{err: err}
	}
	return nil
}

func (ru *run) remember(key string, err error) {
	ru.mu.Lock()
	ru.failed[key] = err
	ru.mu.Unlock()
	if ru.r.o.Health != nil {
		ru.r.o.Health.Fail(key, err)
	}
}

func (ru *run) probeSource(ctx context.Context, cat category.Category, tr try) (*candidate, error) {
	key, base := tr.key, tr.base
	store := ru.r.o.Vendor
	if cat == category.DomainSettings {
		store = ru.r.o.Site
	}
	view, err := store.Probe(ctx, trust.Source{Name: key, Base: base}, ru.r.o.Fetcher)
	if err != nil {
		return nil, err
	}
	idx, err := view.Index(ctx, string(cat))
	if err != nil {
		return nil, err
	}
	if err := ru.fresh(cat, key, idx); err != nil {
		return nil, err
	}
	pick, caps, err := ru.choices(cat)
	if err != nil {
		return nil, failure.New(failure.Local, "read site documents", err)
	}
	c := &candidate{source: tr.source, url: tr.url, key: key, store: store, view: view, targets: map[string]target{},
		manifest: install.Manifest{Category: cat}}
	for _, name := range ru.wanted(cat, idx, pick) {
		ver, files, err := versionFor(key, name, idx.Items[name], pick, caps)
		if err != nil {
			return nil, err
		}
		if err := c.addItem(ctx, name, ver, files); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// wanted lists the index items this endpoint installs: every component;
// of the domain settings, the policy, the deployment caps and its own
// domain's document; of the programs, those approved for its domain.
func (ru *run) wanted(cat category.Category, idx *index.Index, pick map[string]string) []string {
	var names []string
	for name := range idx.Items {
		switch {
		case cat == category.DomainSettings && name != sitedoc.PolicyItem && name != sitedoc.DeploymentItem && name != sitedoc.DomainItem(ru.r.o.Domain):
			continue
		case cat == category.Programs && pick[name] == "":
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// fresh checks a notify-components run's announced versions: a source
// behind any of them is stale.
func (ru *run) fresh(cat category.Category, key string, idx *index.Index) error {
	if cat != category.Components {
		return nil
	}
	for name, want := range ru.req.Announced {
		it, ok := idx.Items[name]
		if !ok {
			return failure.Newf(failure.Stale, key, "does not hold %s %s, announced by the server", name, want)
		}
		if cmp, err := version.Compare(it.Version, want); err != nil || cmp < 0 {
			return failure.Newf(failure.Stale, key, "holds %s %s, older than %s announced by the server", name, it.Version, want)
		}
	}
	return nil
}

// addItem resolves the files of one item version through the view.
func (c *candidate) addItem(ctx context.Context, name, ver string, files []string) error {
	c.manifest.Items = append(c.manifest.Items, install.Item{Name: name, Version: ver})
	for _, p := range files {
		tf, err := c.view.Target(ctx, p)
		if err != nil {
			return err
		}
		prefix := fmt.Sprintf("%s/%s/%s/", c.manifest.Category, name, ver)
		if !strings.HasPrefix(p, prefix) {
			return failure.Newf(failure.Verification, c.key, "index lists %s outside %s", p, prefix)
		}
		inst := name + "/" + path.Base(p)
		sum := tf.Hashes["sha256"]
		c.manifest.Files = append(c.manifest.Files, install.File{Path: inst, Length: tf.Length, SHA256: fmt.Sprintf("%x", []byte(sum))})
		c.targets[inst] = target{path: p, tf: tf}
	}
	return nil
}
