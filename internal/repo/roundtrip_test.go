package repo

import (
	"github.com/cascade-update/cascade/internal/index"

	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// verifyTree checks the whole published state the way a client would,
// with go-tuf's trusted metadata set: every role from root down to every
// bin, then every target file's length and hash.
func verifyTree(t testing.TB, r *Repo) {
	t.Helper()
	md := filepath.Join(r.PublishedDir(), "metadata")
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(md, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	root, err := r.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := trustedmetadata.New(root)
	if err != nil {
		t.Fatal(err)
	}
	tm.RefTime = r.now()
	for v := 2; ; v++ {
		b, err := os.ReadFile(filepath.Join(md, strconv.Itoa(v)+".root.json"))
		if os.IsNotExist(err) {
			break
		}
		if _, err := tm.UpdateRoot(b); err != nil {
			t.Fatalf("root %d: %v", v, err)
		}
	}
	if _, err := tm.UpdateTimestamp(read("timestamp.json")); err != nil {
		t.Fatalf("timestamp: %v", err)
	}
	sv := tm.Timestamp.Signed.Meta["snapshot.json"].Version
	if _, err := tm.UpdateSnapshot(read(metaName(sv, "snapshot")), false); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	tv := tm.Snapshot.Signed.Meta["targets.json"].Version
	if _, err := tm.UpdateTargets(read(metaName(tv, "targets"))); err != nil {
		t.Fatalf("targets: %v", err)
	}
	for _, bin := range tm.Targets["targets"].Signed.Delegations.SuccinctRoles.GetRoles() {
		bv := tm.Snapshot.Signed.Meta[bin+".json"].Version
		b, err := tm.UpdateDelegatedTargets(read(metaName(bv, bin)), bin, "targets")
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		for p, tf := range b.Signed.Targets {
			content, err := os.ReadFile(r.l.fromRel(targetRel(p, tf.Hashes["sha256"])))
			if err != nil {
				t.Fatalf("target %s: %v", p, err)
			}
			if err := tf.VerifyLengthHashes(content); err != nil {
				t.Fatalf("target %s: %v", p, err)
			}
		}
	}
}

// TestGoTUFUpdaterRoundTrip proves the format: go-tuf's own updater, with
// its default fetcher against a plain static file server, refreshes,
// resolves targets through the hash bins and downloads them; then follows
// the repository through later publishes, pruning and refreshes with its
// cached metadata (rollback checks included).
func TestGoTUFUpdaterRoundTrip(t *testing.T) {
	r, c := newTestRepo(t, Settings{Kind: Vendor, Bins: 16, Keep: 2, GCGenerations: -1, GCGrace: -1})
	srv := serve(t, r)
	mustPublish(t, r, component("pattern", "17.735.00", data("lpt.zip", "pattern 735"), data("lpt.sig", "sig")),
		Item{Category: "programs", Name: "agent", Version: "1.2.3", Files: []File{data("agent.pkg", "agent")}})

	cache := t.TempDir()
	up := newUpdater(t, r, srv.URL, cache)
	if err := up.Refresh(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	idx := fetchIndex(t, up, "components")
	item := idx.Items["pattern"]
	if item.Version != "17.735.00" || len(item.Files) != 2 {
		t.Fatalf("index item = %+v", item)
	}
	if got := download(t, up, "components/pattern/17.735.00/lpt.zip"); got != "pattern 735" {
		t.Errorf("downloaded %q", got)
	}
	if got := download(t, up, "programs/agent/1.2.3/agent.pkg"); got != "agent" {
		t.Errorf("downloaded %q", got)
	}

	for _, v := range []string{"17.736.00", "17.737.00"} {
		mustPublish(t, r, component("pattern", v, data("lpt.zip", "pattern "+v)))
	}
	c.Advance(1)
	if _, err := r.Refresh(t.Context(), c.Now()); err != nil {
		t.Fatal(err)
	}
	// A new updater on the same cache: starts from the trusted metadata of
	// the first run, as an endpoint does on its next update.
	up = newUpdater(t, r, srv.URL, cache)
	if err := up.Refresh(); err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	idx = fetchIndex(t, up, "components")
	if got := idx.Items["pattern"]; got.Version != "17.737.00" || !slices.Equal(got.Kept, []string{"17.737.00", "17.736.00"}) {
		t.Errorf("index after pruning = %+v", got)
	}
	if got := download(t, up, "components/pattern/17.737.00/lpt.zip"); got != "pattern 17.737.00" {
		t.Errorf("downloaded %q", got)
	}
	if _, err := up.GetTargetInfo("components/pattern/17.735.00/lpt.zip"); err == nil {
		t.Error("pruned target still resolvable")
	}
	verifyTree(t, r)
}

func fetchIndex(t testing.TB, up *updater.Updater, category string) index.Index {
	t.Helper()
	tf, err := up.GetTargetInfo(index.Path(category))
	if err != nil {
		t.Fatalf("index of %s: %v", category, err)
	}
	var c Custom
	if err := json.Unmarshal(*tf.Custom, &c); err != nil || c.Category != category || c.Name != "" {
		t.Errorf("index custom metadata = %+v, %v", c, err)
	}
	_, b, err := up.DownloadTarget(tf, "", "")
	if err != nil {
		t.Fatalf("download index of %s: %v", category, err)
	}
	idx, err := index.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return *idx
}

func download(t testing.TB, up *updater.Updater, path string) string {
	t.Helper()
	tf, err := up.GetTargetInfo(path)
	if err != nil {
		t.Fatalf("target info %s: %v", path, err)
	}
	_, b, err := up.DownloadTarget(tf, "", "")
	if err != nil {
		t.Fatalf("download %s: %v", path, err)
	}
	return string(b)
}
