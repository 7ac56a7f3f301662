package repo

import (
	"github.com/cascade-update/cascade/internal/index"

	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// targetFiles lists the item files on disk under targets/<category>/<name>.
func targetFiles(t testing.TB, r *Repo, category, name string) []string {
	t.Helper()
	var out []string
	for p := range treeDigest(t, filepath.Join(r.PublishedDir(), "targets", category, name)) {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func TestPruneKeepsLastN(t *testing.T) {
	tests := []struct {
		name      string
		keep      int // Settings.Keep
		itemKeep  int // Item.Keep for every publish
		publishes int
		wantKept  []string
	}{
		{"settings keep 3", 3, 0, 5, []string{"5", "4", "3"}},
		{"item keep overrides", 14, 2, 4, []string{"4", "3"}},
		{"keep 1", 1, 0, 3, []string{"3"}},
		{"fewer than keep", 14, 0, 3, []string{"3", "2", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestRepo(t, Settings{Kind: Vendor, Bins: 8, Keep: tt.keep, GCGenerations: -1, GCGrace: -1})
			var pruned []string
			for i := 1; i <= tt.publishes; i++ {
				it := component("pattern", fmt.Sprint(i), data("a.bin", fmt.Sprint("a", i)), data("b.bin", fmt.Sprint("b", i)))
				it.Keep = tt.itemKeep
				pruned = append(pruned, mustPublish(t, r, it).Pruned...)
			}
			idx := readIndex(t, r, "components")
			if got := idx.Items["pattern"].Kept; !slices.Equal(got, tt.wantKept) {
				t.Errorf("kept %v, want %v", got, tt.wantKept)
			}
			if len(pruned) != 2*(tt.publishes-len(tt.wantKept)) {
				t.Errorf("pruned %v", pruned)
			}
			for _, p := range pruned {
				if tf := published(t, r, p); tf != nil {
					t.Errorf("pruned target %s still in its bin", p)
				}
			}
			files := targetFiles(t, r, "components", "pattern")
			if len(files) != 2*len(tt.wantKept) {
				t.Errorf("files on disk %v, want the %d of versions %v", files, 2*len(tt.wantKept), tt.wantKept)
			}
			for _, f := range files {
				if v := strings.Split(f, "/")[0]; !slices.Contains(tt.wantKept, v) {
					t.Errorf("file of pruned version %s still on disk: %s", v, f)
				}
			}
			for _, v := range tt.wantKept {
				if tf := published(t, r, index.ItemPath("components", "pattern", v, "a.bin")); tf == nil {
					t.Errorf("kept version %s missing from its bin", v)
				}
			}
		})
	}
}

func TestGarbageWaitsForGenerationsAndGrace(t *testing.T) {
	r, c := newTestRepo(t, Settings{Kind: Vendor, Bins: 8, Keep: 1, GCGenerations: 2, GCGrace: Duration(time.Hour)})
	mustPublish(t, r, component("pattern", "1", data("a", "1")))
	first := targetFiles(t, r, "components", "pattern")
	oldMeta := filepath.Join(r.PublishedDir(), "metadata", "2.snapshot.json")
	mustPublish(t, r, component("pattern", "2", data("a", "2")))
	mustPublish(t, r, component("other", "1", data("a", "o1")))
	mustPublish(t, r, component("other", "2", data("a", "o2")))
	// Three generations later but within the grace period: still there.
	if _, err := os.Stat(filepath.Join(r.PublishedDir(), "targets", "components", "pattern", first[0])); err != nil {
		t.Fatalf("pruned file deleted within the grace period: %v", err)
	}
	if _, err := os.Stat(oldMeta); err != nil {
		t.Fatalf("old snapshot deleted within the grace period: %v", err)
	}
	c.Advance(2 * time.Hour)
	// Grace passed; a refresh advances the timestamp and collects.
	if _, err := r.Refresh(context.Background(), c.Now()); err != nil {
		t.Fatal(err)
	}
	if got := targetFiles(t, r, "components", "pattern"); len(got) != 1 || !strings.HasPrefix(got[0], "2/") {
		t.Errorf("files after grace = %v, want only version 2's", got)
	}
	if _, err := os.Stat(oldMeta); !os.IsNotExist(err) {
		t.Errorf("old snapshot still on disk after grace: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.PublishedDir(), "targets", "components", "pattern", "1")); !os.IsNotExist(err) {
		t.Errorf("empty version directory left behind: %v", err)
	}
	// What the current state references is never collected.
	verifyTree(t, r)
}

func TestCatalogRebuiltFromBins(t *testing.T) {
	r, _ := newTestRepo(t, Settings{Kind: Vendor, Bins: 8, Keep: 2, GCGenerations: -1, GCGrace: -1})
	mustPublish(t, r, component("pattern", "1", data("a", "1")), component("engine", "7", data("e", "7")))
	mustPublish(t, r, component("pattern", "2", data("a", "2")))
	if err := os.Remove(r.l.stateFile()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Publish(context.Background(), component("pattern", "2", data("a", "x"))); err == nil {
		t.Fatal("republishing version 2 succeeded after the catalog was lost")
	}
	res := mustPublish(t, r, component("pattern", "3", data("a", "3")))
	if !slices.Equal(res.Pruned, []string{"components/pattern/1/a"}) {
		t.Errorf("pruned %v, want version 1 (found from the bins)", res.Pruned)
	}
	idx := readIndex(t, r, "components")
	if !slices.Equal(idx.Items["pattern"].Kept, []string{"3", "2"}) || idx.Items["engine"].Version != "7" {
		t.Errorf("index after rebuild = %+v", idx)
	}
}
