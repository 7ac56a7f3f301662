package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/mirror"
	"github.com/cascade-update/cascade/internal/trust"
)

// served is what the agent serves of one repository: its versions, the
// upstream it was copied from (for pull-through), and every target its
// verified metadata names, by path under targets/.
type served struct {
	timestamp, snapshot int64
	upstream            trust.Source
	targets             map[string]*metadata.TargetFiles
}

// Serves reports whether the agent serves repository kind (it was given
// a trusted root for it).
func (a *Agent) Serves(kind string) bool { return a.stores[kind] != nil }

// Refresh brings the served copy of repository kind up to date with src,
// normally the source the agent's own update run just used: it verifies
// src's metadata against the agent's trusted metadata, copies all of it
// and the targets clients of the current state need (mirror.Current),
// verified, with timestamp.json last, prunes what the repository no
// longer names, and makes src the upstream of pull-throughs. A source
// older than what the agent serves is failure.Stale, and changes nothing.
func (a *Agent) Refresh(ctx context.Context, kind string, src trust.Source) (*mirror.Result, error) {
	store := a.stores[kind]
	if store == nil {
		return nil, fmt.Errorf("agent: refresh: the agent does not serve the %s repository", kind)
	}
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	res, err := mirror.Copy(ctx, mirror.Options{Store: store, Source: src, Fetcher: a.fetcher, Dir: a.o.Dir,
		Select: mirror.Current, Local: a.o.Local, Prune: true})
	if err != nil {
		a.m.refreshes.WithLabelValues(kind, "error").Inc()
		a.setRepoError(kind, err)
		return nil, fmt.Errorf("agent: refresh %s from %s: %w", kind, src.Name, err)
	}
	a.m.refreshes.WithLabelValues(kind, "ok").Inc()
	for range res.Fetched {
		a.m.fetched(kind, 0, nil)
	}
	a.m.upBytes.Add(float64(res.Bytes))
	a.files.Forget()
	a.publish(ctx, kind, res.View, src)
	if !res.UpToDate || res.Fetched > 0 {
		a.log.Info("agent: serving", "repository", kind, "timestamp", res.Timestamp, "snapshot", res.Snapshot,
			"from", src.Name, "fetched", res.Fetched, "bytes", res.Bytes, "pruned", res.Pruned, "rebuilt_from_deltas", res.Rebuilt)
	}
	for _, e := range res.DeltaErrors {
		a.log.Warn("agent: delta failed, the file was downloaded in full", "repository", kind, "from", src.Name, "error", e)
	}
	return res, nil
}

// publish makes v the served state of kind: pull-through lookups,
// metrics, status.
func (a *Agent) publish(ctx context.Context, kind string, v *trust.View, upstream trust.Source) {
	s := &served{upstream: upstream, targets: map[string]*metadata.TargetFiles{}}
	s.timestamp, s.snapshot = v.Versions()
	all := v.Targets()
	for p, tf := range all {
		if rel, err := trust.ConsistentPath(p, tf); err == nil {
			s.targets[rel] = tf
		}
	}
	items := map[string]map[string]string{}
	for p := range all {
		if cat, rest, _ := strings.Cut(p, "/"); rest == index.Name {
			if idx, err := v.Index(ctx, cat); err == nil {
				items[cat] = map[string]string{}
				for name, it := range idx.Items {
					items[cat][name] = it.Version
				}
			}
		}
	}
	a.m.timestamp.WithLabelValues(kind).Set(float64(s.timestamp))
	a.m.snapshot.WithLabelValues(kind).Set(float64(s.snapshot))
	a.mu.Lock()
	a.served[kind] = s
	rs := a.repoStatus(kind)
	rs.Timestamp, rs.Snapshot, rs.Items = s.timestamp, s.snapshot, items
	if upstream.Base != "" {
		rs.Source, rs.SourceURL, rs.Refreshed, rs.Error = upstream.Name, upstream.Base, a.o.Now().UTC(), ""
	}
	a.mu.Unlock()
	a.saveStatus()
}

// restore loads what the agent already serves, after a restart: the
// served tree is probed locally against the agent's trusted metadata (no
// network), and the upstream of pull-throughs is the last refresh's
// source, from the status file.
func (a *Agent) restore(ctx context.Context) {
	local := fetch.New(fetch.Options{Transport: http.NewFileTransport(http.Dir(a.o.Dir)), MinRate: -1})
	for kind, store := range a.stores {
		if _, err := os.Stat(filepath.Join(a.o.Dir, kind, "metadata", "timestamp.json")); err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		v, err := store.Probe(ctx, trust.Source{Name: "served tree", Base: "http://agent.local/"}, local)
		if err == nil {
			err = v.LoadAllRoles(ctx)
		}
		cancel()
		if err != nil {
			a.log.Warn("agent: served tree does not verify; serving nothing of it until the next refresh",
				"repository", kind, "error", err)
			continue
		}
		a.mu.Lock()
		up := trust.Source{Name: a.repoStatus(kind).Source, Base: a.repoStatus(kind).SourceURL}
		a.mu.Unlock()
		a.publish(ctx, kind, v, up)
	}
}

// copyLocal copies a local file to dst, best effort: a failed or wrong
// copy is discarded or re-downloaded by the verifying fetch that follows.
func copyLocal(src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		return
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return
	}
	out.Close()
}
