package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/trust"
)

// TestKillDuringDeltaUpdate kills (SIGKILL) an endpoint process at random
// points of 30 update runs that rebuild an 8 MiB file from a delta. After
// each kill the installed component is exactly the old or the new
// version, verified by hash; the next run (in this process) completes,
// and the download cache holds no delta or rebuilt temporary file.
func TestKillDuringDeltaUpdate(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("kill test: runs without -race and -short (scripts/test runs it so)")
	}
	w := newWorld(t)
	two := 2
	var err error
	w.origin, err = repo.Init(filepath.Join(t.TempDir(), "origin2"), repo.InitOptions{
		Options: repo.Options{Now: w.now}, Settings: repo.Settings{Kind: repo.Vendor, Bins: 16, Deltas: &two}})
	if err != nil {
		t.Fatal(err)
	}
	origin := w.serveDir(filepath.Dir(w.origin.PublishedDir()))
	dir := t.TempDir()
	root, _ := w.origin.TrustedRoot()
	if _, err := trust.Init(filepath.Join(dir, "trust"), root, trust.Options{Kind: "vendor", Now: w.now}); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	content := make([]byte, 8<<20)
	for i := range content {
		content[i] = byte(r.IntN(256))
	}
	versions := map[string]map[string]string{}
	publish := func(ver string) {
		for range 8 {
			off := r.IntN(len(content) - 256)
			for j := range 256 {
				content[off+j] = byte(r.IntN(256))
			}
		}
		it := repo.Item{Category: "components", Name: "pattern", Version: ver, Files: []repo.File{{Name: "lpt.bin", Data: content}}}
		if _, err := w.origin.Publish(context.Background(), it); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		versions[ver] = map[string]string{"pattern/lpt.bin": hex.EncodeToString(sum[:])}
	}
	publish("0.1")
	if rep, err := childRun(dir, origin); err != nil || rep.Result == report.Failed {
		t.Fatalf("first install: %v %+v", err, rep)
	}
	typical := 300 * time.Millisecond
	kills, byDelta := 0, 0
	for i := 1; i <= 30; i++ {
		ver := fmt.Sprintf("%d.0", i)
		publish(ver)
		old := installedVersion(t, dir)
		if runMaybeKilled(t, helperCmd(dir, origin), r, &typical) {
			kills++
		}
		got := installedVersion(t, dir)
		if got != old && got != ver {
			t.Fatalf("run %d: installed %q after the kill, want %q or %q", i, got, old, ver)
		}
		verifyInstalled(t, dir, got, versions)
		rep, err := childRun(dir, origin)
		if err != nil || rep.Result == report.Failed {
			t.Fatalf("run %d: the run after the kill failed: %v %+v", i, err, rep)
		}
		if rc := rep.Category(category.Components); rc != nil && rc.Deltas > 0 {
			byDelta++
		}
		if got := installedVersion(t, dir); got != ver {
			t.Fatalf("run %d: installed %q after a full run, want %q", i, got, ver)
		}
		verifyInstalled(t, dir, ver, versions)
		entries, err := os.ReadDir(filepath.Join(dir, "installed", "cache"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.Contains(e.Name(), deltaSuffix) || strings.HasPrefix(e.Name(), ".") {
				t.Fatalf("run %d: the download cache holds %s after a complete run", i, e.Name())
			}
		}
	}
	t.Logf("%d of 30 runs killed; %d runs after a kill rebuilt the file from a delta", kills, byDelta)
	if kills < 10 {
		t.Errorf("only %d runs were killed: the kill delay no longer covers the run", kills)
	}
	if byDelta == 0 {
		t.Error("no run used a delta")
	}
}
