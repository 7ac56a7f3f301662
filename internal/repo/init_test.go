package repo

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestInitLayoutAndPermissions(t *testing.T) {
	for _, kind := range []Kind{Vendor, Site} {
		t.Run(string(kind), func(t *testing.T) {
			r, _ := newTestRepo(t, Settings{Kind: kind, Bins: 16})
			dir := r.Dir()
			fi, err := os.Stat(filepath.Join(dir, "keys"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("keys dir mode = %v, want 0700", fi.Mode().Perm())
			}
			for _, role := range []string{"root", "targets", "snapshot", "timestamp", "bins"} {
				fi, err := os.Stat(filepath.Join(dir, "keys", role+".pem"))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s key mode = %v, want 0600", role, fi.Mode().Perm())
				}
			}
			got := treeDigest(t, filepath.Join(dir, "published"))
			want := []string{
				string(kind) + "/metadata/1.root.json",
				string(kind) + "/metadata/1.targets.json",
				string(kind) + "/metadata/1.snapshot.json",
				string(kind) + "/metadata/timestamp.json",
				string(kind) + "/metadata/1.bins-0.json",
				string(kind) + "/metadata/1.bins-f.json",
			}
			for _, w := range want {
				if _, ok := got[w]; !ok {
					t.Errorf("missing published file %s", w)
				}
			}
			for p := range got {
				if strings.Contains(p, "keys") || strings.HasSuffix(p, ".pem") {
					t.Errorf("key material in the published tree: %s", p)
				}
			}
			// 1 root + 1 targets + 16 bins + 1 snapshot + timestamp + one index per category.
			if n := len(got); n != 20+len(kind.Categories()) {
				t.Errorf("published %d files, want %d: %v", n, 20+len(kind.Categories()), got)
			}
			s, err := loadSettings(dir)
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind != kind || s.Bins != 16 || s.Keep != DefaultKeep || s.Expiry != DefaultExpiry {
				t.Errorf("settings = %+v", s)
			}
		})
	}
}

func TestInitRootFormat(t *testing.T) {
	r, c := newTestRepo(t, smallSettings())
	b, err := r.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	root, err := metadata.Root().FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if !root.Signed.ConsistentSnapshot {
		t.Error("consistent snapshots are off")
	}
	if err := root.VerifyDelegate("root", root); err != nil {
		t.Errorf("root does not verify itself: %v", err)
	}
	want := c.Now().Add(365 * 24 * time.Hour)
	if !root.Signed.Expires.Equal(want) {
		t.Errorf("root expires %v, want %v", root.Signed.Expires, want)
	}
	for _, k := range root.Signed.Keys {
		if k.Type != metadata.KeyTypeEd25519 {
			t.Errorf("key type %s, want ed25519", k.Type)
		}
	}
	tr, err := metadata.Targets().FromFile(filepath.Join(r.PublishedDir(), "metadata", "1.targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	sr := tr.Signed.Delegations.SuccinctRoles
	if sr == nil || sr.BitLength != 3 || sr.NamePrefix != "bins" {
		t.Errorf("delegation = %+v, want succinct roles bins with 3 bits", sr)
	}
}

func TestInitRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newClock()
	_, err := Init(dir, InitOptions{Settings: smallSettings(), Options: Options{Now: c.Now}})
	if !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Init on non-empty dir: err = %v, want ErrNotEmpty", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("Init touched the non-empty dir: %d entries", len(entries))
	}
	// An existing empty directory is fine.
	empty := t.TempDir()
	if _, err := Init(empty, InitOptions{Settings: smallSettings(), Options: Options{Now: c.Now}}); err != nil {
		t.Errorf("Init on an empty dir: %v", err)
	}
}

func TestInitRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
		want string
	}{
		{"no kind", Settings{}, "kind"},
		{"unknown kind", Settings{Kind: "other"}, "kind"},
		{"bins not power of two", Settings{Kind: Vendor, Bins: 100}, "power of two"},
		{"one bin", Settings{Kind: Vendor, Bins: 1}, "power of two"},
		{"too many bins", Settings{Kind: Vendor, Bins: 1 << 17}, "power of two"},
		{"negative keep", Settings{Kind: Vendor, Keep: -1}, "keep"},
		{"margin beyond expiry", Settings{Kind: Vendor, Expiry: Periods{Timestamp: Duration(time.Hour)}}, "timestamp margin"},
		{"tiny expiry", Settings{Kind: Vendor, Expiry: Periods{Snapshot: Duration(time.Second)}}, "snapshot expiry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			c := newClock()
			_, err := Init(dir, InitOptions{Settings: tt.s, Options: Options{Now: c.Now}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("failed Init left %s behind", dir)
			}
		})
	}
}

func TestInitRequiresClock(t *testing.T) {
	_, err := Init(t.TempDir(), InitOptions{Settings: smallSettings()})
	if err == nil || !strings.Contains(err.Error(), "Now") {
		t.Fatalf("err = %v, want one about Now", err)
	}
}

func TestOpen(t *testing.T) {
	r, c := newTestRepo(t, smallSettings())
	o, err := Open(r.Dir(), Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Settings(), r.Settings()) {
		t.Errorf("opened settings %+v, want %+v", o.Settings(), r.Settings())
	}
	if _, err := Open(t.TempDir(), Options{Now: c.Now}); err == nil || !strings.Contains(err.Error(), "not a repository") {
		t.Errorf("Open of a plain dir: err = %v", err)
	}
}

func TestOpenChecksKeysBeforeSigning(t *testing.T) {
	a, c := newTestRepo(t, smallSettings())
	b, _ := newTestRepo(t, smallSettings())
	// Swap in another repository's snapshot key.
	src, err := os.ReadFile(filepath.Join(b.Dir(), "keys", "snapshot.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.Dir(), "keys", "snapshot.pem"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, a.PublishedDir())
	r, err := Open(a.Dir(), Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Publish(t.Context(), component("x", "1", data("f", "x")))
	if err == nil || !strings.Contains(err.Error(), "not a key the repository's metadata authorises") {
		t.Fatalf("publish with a foreign key: err = %v", err)
	}
	if after := treeDigest(t, a.PublishedDir()); !maps.Equal(before, after) {
		t.Error("publish with a foreign key changed the published tree")
	}
}
