package repo

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNeeds: the files a published state needs are its snapshot, the
// targets metadata and bins it names and their target files (both
// versions of the component: the repository still lists version 1), all
// on disk; an older state's snapshot is not among them; a damaged
// snapshot is named in the error.
func TestNeeds(t *testing.T) {
	r, _ := newTestRepo(t, smallSettings())
	mustPublish(t, r, component("pattern", "1", data("a", "one")))
	mustPublish(t, r, component("pattern", "2", data("a", "two")))
	read := func(rel string) ([]byte, error) { return os.ReadFile(r.l.fromRel(rel)) }
	ts, err := os.ReadFile(filepath.Join(r.l.metadataDir(), "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]string{}
	got, err := Needs(context.Background(), ts, read, seen)
	if err != nil {
		t.Fatal(err)
	}
	var snaps, tops, v2, v1 int
	oldSnap := false
	for _, rel := range got {
		if _, err := os.Stat(r.l.fromRel(rel)); err != nil {
			t.Errorf("needed file %s: %v", rel, err)
		}
		switch {
		case strings.HasSuffix(rel, ".snapshot.json"):
			snaps++
			oldSnap = rel != "metadata/3.snapshot.json"
		case strings.HasPrefix(rel, "metadata/") && strings.HasSuffix(rel, ".targets.json"):
			tops++
		case strings.HasPrefix(rel, "targets/components/pattern/2/") && strings.HasSuffix(rel, ".a"):
			v2++
		case strings.HasPrefix(rel, "targets/components/pattern/1/"):
			v1++
		}
	}
	if snaps != 1 || oldSnap || tops != 1 || v2 != 1 || v1 != 1 {
		t.Errorf("snapshots %d (an older one: %v), top-level targets %d, version 2's file %d, version 1's %d; want 1 (3.snapshot.json) 1 1 1 in %v",
			snaps, oldSnap, tops, v2, v1, got)
	}
	if _, err := os.Stat(r.l.fromRel("metadata/2.snapshot.json")); err != nil {
		t.Errorf("the older snapshot is not on disk: %v", err)
	}
	if len(seen) == 0 {
		t.Error("nothing remembered in seen")
	}
	// A second call reads nothing but the timestamp it is given.
	again, err := Needs(context.Background(), ts, func(rel string) ([]byte, error) {
		t.Errorf("read %s again", rel)
		return nil, os.ErrNotExist
	}, seen)
	if err != nil || !slices.Equal(again, got) {
		t.Errorf("second call: %v, %v", again, err)
	}

	damaged := func(rel string) ([]byte, error) {
		if strings.HasSuffix(rel, ".snapshot.json") {
			return []byte("{"), nil
		}
		return read(rel)
	}
	if _, err := Needs(context.Background(), ts, damaged, map[string][]string{}); err == nil || !strings.Contains(err.Error(), ".snapshot.json") {
		t.Errorf("a damaged snapshot: %v", err)
	}
	if _, err := Needs(context.Background(), []byte("{}"), read, map[string][]string{}); err == nil {
		t.Error("a timestamp naming no snapshot was accepted")
	}
}

func TestIsRoot(t *testing.T) {
	for rel, want := range map[string]bool{
		"metadata/1.root.json": true, "metadata/12.root.json": true, "metadata/root.json": false,
		"metadata/1.snapshot.json": false, "targets/1.root.json": false, "metadata/x.root.json": false,
	} {
		if IsRoot(rel) != want {
			t.Errorf("IsRoot(%q) = %v", rel, !want)
		}
	}
}
