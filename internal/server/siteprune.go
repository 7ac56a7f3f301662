package server

import (
	"context"
	"time"

	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/store"
)

// The database holds every signed state of the site repository
// (store.Cluster); the writer prunes the old ones with the rest of the
// history. A process that materialises the site repository needs the
// newest state's files and the root chain only (materialise), so what is
// kept is: the root metadata, always (TUF clients walk 1.root.json,
// 2.root.json, ... up to the newest); the newest SiteKeepVersions
// versions and every version younger than SiteRetention; and every file
// one of them needs. A file no kept version needs is deleted; a later
// version that references its content again records it again
// (repo.Commit.Files).

// pruneSite prunes the database's site history if this process is the
// writer (ok), holding s.mu, so no publish of this process runs meanwhile.
func (s *site) pruneSite(ctx context.Context, keep int, before time.Time) (res store.SitePruned, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl == nil || s.writer == nil {
		return store.SitePruned{}, false, nil
	}
	res, err = s.writer.PruneSite(ctx, store.SitePrune{Keep: keep, Before: before,
		Needs: siteNeeds(), Always: repo.IsRoot})
	return res, true, err
}

// siteNeeds returns a store.SitePrune.Needs for the site repository's
// layout: what repo.Needs lists, each metadata file read once per prune.
func siteNeeds() func(ctx context.Context, timestamp []byte, read func(string) ([]byte, error)) ([]string, error) {
	seen := map[string][]string{}
	return func(ctx context.Context, timestamp []byte, read func(string) ([]byte, error)) ([]string, error) {
		return repo.Needs(ctx, timestamp, read, seen)
	}
}
