package repo

import (
	"maps"

	"github.com/cascade-update/cascade/internal/index"

	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func TestFailedPublishLeavesTreeUnchanged(t *testing.T) {
	r, _ := newTestRepo(t, smallSettings())
	mustPublish(t, r, component("pattern", "1", data("a", "1")))
	before := treeDigest(t, r.PublishedDir())

	// A missing input file in the second item of a batch: nothing of the
	// first item may appear either.
	_, err := r.Publish(context.Background(),
		component("pattern", "2", data("a", "2")),
		component("engine", "1", File{Path: filepath.Join(t.TempDir(), "missing.bin")}))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want a missing-file error", err)
	}
	if after := treeDigest(t, r.PublishedDir()); !maps.Equal(before, after) {
		t.Fatalf("published tree changed by a failed publish:\nbefore %v\nafter  %v", before, after)
	}
	mustPublish(t, r, component("pattern", "2", data("a", "2")))
}

func TestPublishFailingAtLastStepRollsBack(t *testing.T) {
	r, _ := newTestRepo(t, smallSettings())
	srv := serve(t, r)
	mustPublish(t, r, component("pattern", "1", data("a", "1")))
	before := treeDigest(t, r.PublishedDir())
	stateBefore, err := os.ReadFile(r.l.stateFile())
	if err != nil {
		t.Fatal(err)
	}

	// Fail after every target and metadata file is written, just before
	// the timestamp would be replaced.
	var wrote int
	r.beforeTimestamp = func() error {
		wrote = len(treeDigest(t, r.PublishedDir())) - len(before)
		return errors.New("injected failure")
	}
	_, err = r.Publish(context.Background(), component("pattern", "2", data("a", "2"), data("b", "2")))
	if err == nil || err.Error() != "publish: injected failure" {
		t.Fatalf("err = %v, want the injected failure", err)
	}
	if wrote < 5 { // 2 files, an index, at least one bin, a snapshot
		t.Fatalf("hook saw %d new files; the failure was not at the last step", wrote)
	}
	if after := treeDigest(t, r.PublishedDir()); !maps.Equal(before, after) {
		t.Fatalf("published tree changed by a failed publish:\nbefore %v\nafter  %v", before, after)
	}
	if st, _ := os.ReadFile(r.l.stateFile()); string(st) != string(stateBefore) {
		t.Error("state.json changed by a failed publish")
	}
	// Clients still see the old complete state, and the publisher recovers.
	if got := download(t, newUpdater(t, r, srv.URL, ""), "components/pattern/1/a"); got != "1" {
		t.Errorf("downloaded %q", got)
	}
	r.beforeTimestamp = nil
	mustPublish(t, r, component("pattern", "2", data("a", "2")))
	verifyTree(t, r)
}

// TestReadersSeeCompleteStates runs go-tuf updaters against the published
// tree while publishes are committed: every refresh must see one complete
// state (no missing or mismatched file), whichever instant it starts at.
func TestReadersSeeCompleteStates(t *testing.T) {
	r, _ := newTestRepo(t, Settings{Kind: Vendor, Bins: 8, Keep: 2})
	srv := serve(t, r)
	mustPublish(t, r, component("pattern", "0", data("a", "0")))

	var done atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500 && (!done.Load() || i == 0); i++ {
				if err := readNewest(t, r, srv.URL); err != nil {
					errs <- err
					return
				}
				reads.Add(1)
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		mustPublish(t, r, component("pattern", fmt.Sprint(i), data("a", fmt.Sprint(i)), data("b", fmt.Sprint(i))))
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d reads during 20 publishes", reads.Load())
}

// readNewest is one client update: refresh, read the index, download the
// newest version's files.
func readNewest(t *testing.T, r *Repo, base string) error {
	up, err := makeUpdater(r, base, t.TempDir())
	if err != nil {
		return err
	}
	if err := up.Refresh(); err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	tf, err := up.GetTargetInfo(index.Path("components"))
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	_, b, err := up.DownloadTarget(tf, "", "")
	if err != nil {
		return fmt.Errorf("download index: %w", err)
	}
	idx, err := index.Parse(b)
	if err != nil {
		return err
	}
	for _, p := range idx.Items["pattern"].Files {
		tf, err := up.GetTargetInfo(p)
		if err != nil {
			return fmt.Errorf("target %s: %w", p, err)
		}
		if _, _, err := up.DownloadTarget(tf, "", ""); err != nil {
			return fmt.Errorf("download %s: %w", p, err)
		}
	}
	return nil
}
