package repo

import (
	"maps"

	"github.com/cascade-update/cascade/internal/index"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// published returns the target info of path in the current state.
func published(t testing.TB, r *Repo, path string) *metadata.TargetFiles {
	t.Helper()
	tr, err := loadTree(r.l)
	if err != nil {
		t.Fatal(err)
	}
	tf, err := tr.lookup(path)
	if err != nil {
		t.Fatal(err)
	}
	return tf
}

// readIndex reads the current index of a category from the published tree.
func readIndex(t testing.TB, r *Repo, category string) index.Index {
	t.Helper()
	idx, err := r.Index(category)
	if err != nil {
		t.Fatal(err)
	}
	return *idx
}

func TestPublish(t *testing.T) {
	r, _ := newTestRepo(t, smallSettings())
	in := writeInput(t, "lpt.zip", "pattern bytes")
	res := mustPublish(t, r, Item{
		Category: "components", Name: "pattern", Version: "17.735.00",
		Files: []File{{Path: in}, {Name: "engine.bin", Data: []byte("engine")}},
	})
	if res.Timestamp != 2 || res.Snapshot != 2 {
		t.Errorf("versions after first publish: timestamp %d snapshot %d, want 2 and 2", res.Timestamp, res.Snapshot)
	}
	wantAdded := []string{"components/pattern/17.735.00/lpt.zip", "components/pattern/17.735.00/engine.bin", "components/index.json"}
	if !slices.Equal(res.Added, wantAdded) {
		t.Errorf("added %v, want %v", res.Added, wantAdded)
	}
	tf := published(t, r, "components/pattern/17.735.00/lpt.zip")
	sum := sha256.Sum256([]byte("pattern bytes"))
	if tf == nil || tf.Length != 13 || hex.EncodeToString(tf.Hashes["sha256"]) != hex.EncodeToString(sum[:]) || len(tf.Hashes) != 1 {
		t.Fatalf("target info = %+v", tf)
	}
	var c Custom
	if err := json.Unmarshal(*tf.Custom, &c); err != nil {
		t.Fatal(err)
	}
	if c != (Custom{Category: "components", Name: "pattern", Version: "17.735.00"}) {
		t.Errorf("custom = %+v", c)
	}
	onDisk := filepath.Join(r.PublishedDir(), "targets", "components", "pattern", "17.735.00", hex.EncodeToString(sum[:])+".lpt.zip")
	if b, err := os.ReadFile(onDisk); err != nil || string(b) != "pattern bytes" {
		t.Errorf("content-addressed file %s: %q, %v", onDisk, b, err)
	}
	idx := readIndex(t, r, "components")
	want := index.Item{
		Version: "17.735.00",
		Files:   []string{"components/pattern/17.735.00/engine.bin", "components/pattern/17.735.00/lpt.zip"},
		Kept:    []string{"17.735.00"},
	}
	if got := idx.Items["pattern"]; idx.Category != "components" || got.Version != want.Version ||
		!slices.Equal(got.Files, want.Files) || !slices.Equal(got.Kept, want.Kept) {
		t.Errorf("index = %+v, want pattern: %+v", idx, want)
	}
	if progs := readIndex(t, r, "programs"); len(progs.Items) != 0 {
		t.Errorf("programs index = %+v, want empty", progs)
	}
}

func TestPublishResignsOnlyAffectedBins(t *testing.T) {
	r, _ := newTestRepo(t, Settings{Kind: Vendor, Bins: 64})
	before, err := loadTree(r.l)
	if err != nil {
		t.Fatal(err)
	}
	res := mustPublish(t, r, component("pattern", "1", data("a", "x")))
	after, err := loadTree(r.l)
	if err != nil {
		t.Fatal(err)
	}
	changed := map[string]bool{}
	for name, mf := range after.snapshot.Signed.Meta {
		if mf.Version != before.snapshot.Signed.Meta[name].Version {
			changed[strings.TrimSuffix(name, ".json")] = true
		}
	}
	want := map[string]bool{}
	for _, p := range res.Added {
		want[after.binFor(p)] = true
	}
	if len(changed) != len(want) {
		t.Errorf("re-signed %v, want only the bins of %v: %v", changed, res.Added, want)
	}
	for b := range want {
		if !changed[b] {
			t.Errorf("bin %s of a new target was not re-signed", b)
		}
	}
}

func TestPublishVersionOrdering(t *testing.T) {
	tests := []struct {
		name    string
		first   string
		second  string
		wantErr error
	}{
		{"newer", "17.735.00", "17.736.00", nil},
		{"hotfix is newer", "1.2.3", "1.2.3-hotfix4", nil},
		{"numeric not lexical", "1.9", "1.10", nil},
		{"same", "17.735.00", "17.735.00", ErrVersionExists},
		{"same after normalisation", "17.735.00", "17.735.0", ErrVersionExists},
		{"older", "17.735.00", "17.734.99", ErrVersionOlder},
		{"lexically larger but older", "1.10", "1.9", ErrVersionOlder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestRepo(t, smallSettings())
			mustPublish(t, r, component("pattern", tt.first, data("f", "1")))
			before := treeDigest(t, r.PublishedDir())
			_, err := r.Publish(context.Background(), component("pattern", tt.second, data("f", "2")))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "components/pattern "+tt.second) {
					t.Errorf("error %q does not name the item", err)
				}
				if !maps.Equal(before, treeDigest(t, r.PublishedDir())) {
					t.Error("refused publish changed the published tree")
				}
			}
		})
	}
}

func TestPublishRejectsInvalidItems(t *testing.T) {
	r, _ := newTestRepo(t, smallSettings())
	dirInput := t.TempDir()
	tests := []struct {
		name string
		item Item
		want string
	}{
		{"site category in vendor repo", Item{Category: "domain_settings", Name: "a", Version: "1", Files: []File{data("f", "x")}}, "category"},
		{"unknown category", Item{Category: "x", Name: "a", Version: "1", Files: []File{data("f", "x")}}, "category"},
		{"name with slash", component("a/b", "1", data("f", "x")), "not allowed"},
		{"dot-dot name", component("..", "1", data("f", "x")), "start with"},
		{"bad version", component("a", "1..2", data("f", "x")), "two separators"},
		{"no files", component("a", "1"), "0 files"},
		{"same file twice", component("a", "1", data("f", "x"), data("f", "y")), "two files"},
		{"bad file name", component("a", "1", data(".hidden", "x")), "start with"},
		{"missing input", component("a", "1", File{Path: "/nonexistent/input"}), "no such file"},
		{"directory input", component("a", "1", File{Path: dirInput}), "not a regular file"},
		{"path and data", component("a", "1", File{Name: "f", Path: "/etc/hostname", Data: []byte("x")}), "exactly one"},
		{"negative keep", Item{Category: "components", Name: "a", Version: "1", Files: []File{data("f", "x")}, Keep: -1}, "negative"},
	}
	before := treeDigest(t, r.PublishedDir())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Publish(context.Background(), tt.item)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	_, err := r.Publish(context.Background(), component("a", "1", data("f", "x")), component("a", "2", data("f", "x")))
	if !errors.Is(err, ErrInvalidItem) {
		t.Errorf("same item twice in one publish: err = %v", err)
	}
	if !maps.Equal(before, treeDigest(t, r.PublishedDir())) {
		t.Error("rejected publishes changed the published tree")
	}
}

func TestPublishSiteRepository(t *testing.T) {
	r, _ := newTestRepo(t, Settings{Kind: Site, Bins: 4})
	mustPublish(t, r,
		Item{Category: "domain_settings", Name: "berlin", Version: "3", Files: []File{data("policy.yaml", "origin: x")}},
		Item{Category: "programs", Name: "agent", Version: "5.1", Files: []File{data("approval.json", "{}")}})
	if _, err := r.Publish(context.Background(), component("x", "1", data("f", "x"))); !errors.Is(err, ErrInvalidItem) {
		t.Errorf("components in the site repository: err = %v", err)
	}
	if idx := readIndex(t, r, "domain_settings"); idx.Items["berlin"].Version != "3" {
		t.Errorf("domain_settings index = %+v", idx)
	}
}

func TestConcurrentPublishersDoNotInterleave(t *testing.T) {
	r, c := newTestRepo(t, smallSettings())
	const writers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		// Separate Repo values: the lock file, not the mutex, must serialise them.
		o, err := Open(r.Dir(), Options{Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := string(rune('a' + w))
				_, err := o.Publish(context.Background(), component(name, string(rune('1'+i)), data("f", name)))
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	tr, err := loadTree(r.l)
	if err != nil {
		t.Fatal(err)
	}
	if v := tr.timestamp.Signed.Version; v != 1+writers*each {
		t.Errorf("timestamp version %d, want %d (a publish was lost)", v, 1+writers*each)
	}
	idx := readIndex(t, r, "components")
	for w := range writers {
		if got := idx.Items[string(rune('a'+w))]; len(got.Kept) != each {
			t.Errorf("item %c kept %v, want %d versions", 'a'+w, got.Kept, each)
		}
	}
}
