package trust

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/failure"
)

// LoadAllRoles verifies every delegated role the snapshot names, so that
// Files and Targets cover the whole repository (for mirroring).
func (v *View) LoadAllRoles(ctx context.Context) error {
	v.mu.Lock()
	var roles []string
	for name := range v.tm.Snapshot.Signed.Meta {
		if role := strings.TrimSuffix(name, ".json"); role != metadata.TARGETS {
			roles = append(roles, role)
		}
	}
	v.mu.Unlock()
	for _, role := range roles {
		if err := CheckRoleName(role); err != nil {
			return failure.New(failure.Verification, v.src.Name+": snapshot", err)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(loadParallelism)
	for _, role := range roles {
		g.Go(func() error {
			v.mu.Lock()
			defer v.mu.Unlock()
			_, err := v.loadRole(ctx, role)
			return err
		})
	}
	return g.Wait()
}

// loadParallelism bounds the roles LoadAllRoles fetches at once.
const loadParallelism = 16

// Targets returns every target of the top-level targets role and of the
// delegated roles loaded so far, by target path.
func (v *View) Targets() map[string]*metadata.TargetFiles {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]*metadata.TargetFiles{}
	for _, role := range v.tm.Targets {
		for p, tf := range role.Signed.Targets {
			out[p] = tf
		}
	}
	return out
}

// Files returns the verified metadata of the view under the names a
// consistent-snapshot repository serves them: the root versions verified
// by rotation and the current root as N.root.json, timestamp.json,
// N.snapshot.json, N.targets.json and N.<role>.json for every loaded
// delegated role.
func (v *View) Files() map[string][]byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string][]byte{}
	for ver, b := range v.roots {
		out[fmt.Sprintf("%d.root.json", ver)] = b
	}
	out[fmt.Sprintf("%d.root.json", v.tm.Root.Signed.Version)] = v.raw.root
	out["timestamp.json"] = v.raw.timestamp
	out[fmt.Sprintf("%d.snapshot.json", v.tm.Snapshot.Signed.Version)] = v.raw.snapshot
	out[fmt.Sprintf("%d.targets.json", v.tm.Targets[metadata.TARGETS].Signed.Version)] = v.raw.targets
	for name, b := range v.raw.roles {
		if role, ok := v.tm.Targets[name]; ok {
			out[fmt.Sprintf("%d.%s.json", role.Signed.Version, name)] = b
		}
	}
	return out
}
