package repo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RefreshResult says what a refresh re-signed.
type RefreshResult struct {
	// Resigned names the roles given a new version: always "timestamp";
	// "snapshot", "targets" and bin names when they were within their
	// margin of expiry (or, for the snapshot, when a targets role
	// changed).
	Resigned []string
	// Timestamp and Snapshot are the versions now published.
	Timestamp, Snapshot int64
}

// Refresh re-signs the timestamp with a new expiry, and every other online
// role whose expiry is within its Settings.Margin of now. It also deletes
// files whose grace period has passed. Clients see the new versions
// atomically, as after a publish.
func (r *Repo) Refresh(ctx context.Context, now time.Time) (*RefreshResult, error) {
	res := &RefreshResult{}
	err := r.write(ctx, now, func(op *writeOp) error {
		t := op.tree
		if err := t.loadAllBins(); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		m := r.settings.Margin
		if r.due(t.targets.Signed.Expires, m.Targets, now) {
			t.dirty[metadata.TARGETS] = true
		}
		for name, b := range t.bins {
			if r.due(b.Signed.Expires, m.Targets, now) {
				t.dirty[name] = true
			}
		}
		res.Resigned = slices.Sorted(maps.Keys(t.dirty))
		if r.due(t.root.Signed.Expires, m.Root, now) {
			ok, err := r.resignRoot(t, now)
			if err != nil {
				return t.abort(fmt.Errorf("refresh: %w", err))
			}
			if ok {
				res.Resigned = append([]string{metadata.ROOT}, res.Resigned...)
			}
		}
		snap := r.due(t.snapshot.Signed.Expires, m.Snapshot, now) || len(t.dirty) > 0
		if snap {
			res.Resigned = append(res.Resigned, metadata.SNAPSHOT)
		}
		res.Resigned = append(res.Resigned, metadata.TIMESTAMP)
		if err := r.commit(op, snap); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		res.Timestamp, res.Snapshot = t.timestamp.Signed.Version, t.snapshot.Signed.Version
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("refreshed", "resigned", len(res.Resigned), "timestamp", res.Timestamp)
	return res, nil
}

// resignRoot writes the next root version, same keys, new expiry, when
// the root key is in DIR/keys. Without it (kept offline) it only logs: the
// root key holder must run refresh.
func (r *Repo) resignRoot(t *tree, now time.Time) (bool, error) {
	k, err := loadKey(r.l.keyFile(metadata.ROOT))
	if errors.Is(err, os.ErrNotExist) {
		r.log.Warn("root is near expiry but the root key is not in the keys directory", "expires", t.root.Signed.Expires)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !slices.Contains(t.root.Signed.Roles[metadata.ROOT].KeyIDs, k.id) {
		return false, fmt.Errorf("root key %s is not the repository's root key", r.l.keyFile(metadata.ROOT))
	}
	root := t.root
	root.Signed.Version++
	root.Signed.Expires = signer{now: now}.expires(r.settings.Expiry.Root)
	data, err := signMeta(root, k)
	if err != nil {
		return false, fmt.Errorf("root: %w", err)
	}
	return true, t.writeMeta(metadata.ROOT, 0, root.Signed.Version, data)
}

// due reports whether expires is within margin of now.
func (r *Repo) due(expires time.Time, margin Duration, now time.Time) bool {
	return !now.Add(time.Duration(margin)).Before(expires)
}

// Health is the state of a role's expiry.
type Health int

// Health values, from good to bad.
const (
	Healthy  Health = iota // not within its margin of expiry
	Expiring               // within its margin of expiry
	Expired                // past its expiry
)

func (h Health) String() string {
	return [...]string{"ok", "expiring", "expired"}[h]
}

// RoleStatus is the state of one role, or of all bins together.
type RoleStatus struct {
	// Role is "root", "targets", "snapshot", "timestamp" or "bins".
	Role string
	// Version is the published version; for bins, the highest.
	Version int64
	// Expires is the expiry; for bins, the earliest.
	Expires time.Time
	// Count is the number of roles summarised: the number of bins, else 1.
	Count  int
	Health Health
	// Warning explains a Health other than Healthy, and what to do.
	Warning string
}

// Status is the state of every role of a repository.
type Status struct {
	Kind  Kind
	Roles []RoleStatus
	// Deltas are the published delta targets, sorted by path.
	Deltas []DeltaInfo
}

// Warnings returns the warning of every role that has one.
func (s *Status) Warnings() []string {
	var w []string
	for _, r := range s.Roles {
		if r.Warning != "" {
			w = append(w, r.Warning)
		}
	}
	return w
}

// Expired reports whether any role has expired: clients reject the
// repository until it is refreshed.
func (s *Status) Expired() bool {
	for _, r := range s.Roles {
		if r.Health == Expired {
			return true
		}
	}
	return false
}

// Status reports every role's version and expiry as of now, with a
// warning for each role within its margin of expiry or past it. It takes
// no lock and needs no keys.
func (r *Repo) Status(now time.Time) (*Status, error) {
	t, err := loadTree(r.l)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if err := t.loadAllBins(); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	m := r.settings.Margin
	st := &Status{Kind: r.settings.Kind}
	add := func(role string, v int64, exp time.Time, count int, margin Duration) {
		rs := RoleStatus{Role: role, Version: v, Expires: exp, Count: count}
		rs.Health, rs.Warning = r.health(role, exp, margin, now)
		st.Roles = append(st.Roles, rs)
	}
	add(metadata.ROOT, t.root.Signed.Version, t.root.Signed.Expires, 1, m.Root)
	add(metadata.TARGETS, t.targets.Signed.Version, t.targets.Signed.Expires, 1, m.Targets)
	var binV int64
	var binExp time.Time
	for _, b := range t.bins {
		binV = max(binV, b.Signed.Version)
		if binExp.IsZero() || b.Signed.Expires.Before(binExp) {
			binExp = b.Signed.Expires
		}
	}
	add(binsRole, binV, binExp, len(t.bins), m.Targets)
	add(metadata.SNAPSHOT, t.snapshot.Signed.Version, t.snapshot.Signed.Expires, 1, m.Snapshot)
	add(metadata.TIMESTAMP, t.timestamp.Signed.Version, t.timestamp.Signed.Expires, 1, m.Timestamp)
	if st.Deltas, err = deltaStatus(t); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return st, nil
}

func (r *Repo) health(role string, exp time.Time, margin Duration, now time.Time) (Health, string) {
	fix := "run refresh"
	if role == metadata.ROOT {
		fix = "run refresh with the root key in keys/root.pem"
	}
	switch {
	case now.After(exp):
		return Expired, fmt.Sprintf("%s expired %s ago (at %s): %s",
			role, now.Sub(exp).Round(time.Minute), exp.Format(time.RFC3339), fix)
	case r.due(exp, margin, now):
		return Expiring, fmt.Sprintf("%s expires in %s (at %s): %s",
			role, exp.Sub(now).Round(time.Minute), exp.Format(time.RFC3339), fix)
	}
	return Healthy, ""
}
