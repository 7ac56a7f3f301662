package repo

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRefreshResignsWhatIsDue(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		want    []string // roles re-signed, bins summarised as "bins-*"
	}{
		{"fresh: timestamp only", time.Hour, []string{"timestamp"}},
		{"snapshot within margin", 5*day + time.Hour, []string{"snapshot", "timestamp"}},
		{"targets and bins within margin", 77 * day, []string{"bins-*", "targets", "snapshot", "timestamp"}},
		{"root within margin", 336 * day, []string{"root", "bins-*", "targets", "snapshot", "timestamp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, c := newTestRepo(t, Settings{Kind: Vendor, Bins: 4})
			c.Advance(tt.advance)
			res, err := r.Refresh(context.Background(), c.Now())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, role := range res.Resigned {
				if strings.HasPrefix(role, "bins-") {
					role = "bins-*"
				}
				if len(got) == 0 || got[len(got)-1] != role {
					got = append(got, role)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("re-signed %v, want %v", res.Resigned, tt.want)
			}
			if res.Timestamp != 2 {
				t.Errorf("timestamp version %d, want 2", res.Timestamp)
			}
			st, err := r.Status(c.Now())
			if err != nil {
				t.Fatal(err)
			}
			if w := st.Warnings(); len(w) != 0 {
				t.Errorf("warnings right after refresh: %v", w)
			}
			verifyTree(t, r)
		})
	}
}

func TestRefreshWithoutRootKey(t *testing.T) {
	r, c := newTestRepo(t, Settings{Kind: Vendor, Bins: 4})
	if err := os.Remove(filepath.Join(r.Dir(), "keys", "root.pem")); err != nil {
		t.Fatal(err)
	}
	// Publishing needs no root key.
	mustPublish(t, r, component("pattern", "1", data("a", "1")))
	c.Advance(340 * day)
	res, err := r.Refresh(context.Background(), c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(res.Resigned, "root") {
		t.Error("root re-signed without its key")
	}
	st, err := r.Status(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	w := st.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], "root expires in 600h0m0s") || !strings.Contains(w[0], "root key") {
		t.Errorf("warnings = %q, want one about the root", w)
	}
}

func TestStatus(t *testing.T) {
	r, c := newTestRepo(t, Settings{Kind: Vendor, Bins: 4})
	start := c.Now()
	tests := []struct {
		name        string
		at          time.Duration
		wantHealth  map[string]Health
		wantExpired bool
	}{
		{"fresh", 0, map[string]Health{}, false},
		{"timestamp expiring", 19 * time.Hour, map[string]Health{"timestamp": Expiring}, false},
		{"timestamp expired", 25 * time.Hour, map[string]Health{"timestamp": Expired}, true},
		{"snapshot expiring", 5*day + time.Hour, map[string]Health{"timestamp": Expired, "snapshot": Expiring}, true},
		{"everything expired", 400 * day, map[string]Health{
			"root": Expired, "targets": Expired, "bins": Expired, "snapshot": Expired, "timestamp": Expired}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := r.Status(start.Add(tt.at))
			if err != nil {
				t.Fatal(err)
			}
			var roles []string
			for _, rs := range st.Roles {
				roles = append(roles, rs.Role)
				if rs.Health != tt.wantHealth[rs.Role] {
					t.Errorf("%s health %v, want %v", rs.Role, rs.Health, tt.wantHealth[rs.Role])
				}
				if (rs.Warning != "") != (rs.Health != Healthy) {
					t.Errorf("%s: health %v with warning %q", rs.Role, rs.Health, rs.Warning)
				}
				if rs.Version != 1 {
					t.Errorf("%s version %d, want 1", rs.Role, rs.Version)
				}
			}
			if !slices.Equal(roles, []string{"root", "targets", "bins", "snapshot", "timestamp"}) {
				t.Errorf("roles %v", roles)
			}
			if st.Expired() != tt.wantExpired {
				t.Errorf("Expired() = %v, want %v", st.Expired(), tt.wantExpired)
			}
		})
	}
	bins := 0
	st, _ := r.Status(start)
	for _, rs := range st.Roles {
		if rs.Role == "bins" {
			bins = rs.Count
			if want := start.Add(90 * day); !rs.Expires.Equal(want) {
				t.Errorf("bins expire %v, want %v", rs.Expires, want)
			}
		}
	}
	if bins != 4 {
		t.Errorf("bins count %d, want 4", bins)
	}
}

func TestStatusNeedsNoKeys(t *testing.T) {
	r, c := newTestRepo(t, smallSettings())
	if err := os.RemoveAll(filepath.Join(r.Dir(), "keys")); err != nil {
		t.Fatal(err)
	}
	o, err := Open(r.Dir(), Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Status(c.Now()); err != nil {
		t.Errorf("status without keys: %v", err)
	}
	if _, err := o.Refresh(context.Background(), c.Now()); err == nil || !strings.Contains(err.Error(), "timestamp key") && !strings.Contains(err.Error(), "targets key") {
		t.Errorf("refresh without keys: err = %v, want a missing-key error", err)
	}
}

func TestRefreshedRepositoryVerifiesAfterExpiry(t *testing.T) {
	r, c := newTestRepo(t, Settings{Kind: Vendor, Bins: 4})
	mustPublish(t, r, component("pattern", "1", data("a", "1")))
	// Daily refreshes for 100 days keep every role valid, beyond the
	// targets' 90-day expiry.
	for range 100 {
		c.Advance(day)
		if _, err := r.Refresh(context.Background(), c.Now()); err != nil {
			t.Fatal(err)
		}
		st, err := r.Status(c.Now())
		if err != nil {
			t.Fatal(err)
		}
		if w := st.Warnings(); len(w) != 0 {
			t.Fatalf("after daily refreshes, at %v: %v", c.Now(), w)
		}
	}
	verifyTree(t, r)
}

func TestPublishResignsTargetsNearExpiry(t *testing.T) {
	r, c := newTestRepo(t, smallSettings())
	mustPublish(t, r, component("pattern", "1", data("a", "1")))
	if got := r.mustStatus(t, c.Now(), "targets").Version; got != 1 {
		t.Fatalf("targets version %d after a publish far from expiry, want 1", got)
	}
	c.Advance(80 * day)
	mustPublish(t, r, component("pattern", "2", data("a", "2")))
	if got := r.mustStatus(t, c.Now(), "targets"); got.Version != 2 || got.Health != Healthy {
		t.Errorf("targets after a publish within its margin: %+v, want version 2, healthy", got)
	}
}

func (r *Repo) mustStatus(t *testing.T, now time.Time, role string) RoleStatus {
	t.Helper()
	st, err := r.Status(now)
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range st.Roles {
		if rs.Role == role {
			return rs
		}
	}
	t.Fatalf("no role %s in status", role)
	return RoleStatus{}
}
