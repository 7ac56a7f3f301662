package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/trust"
)

const killHelperEnv = "CASCADE_UPDATE_KILL_HELPER"

// TestKillHelper is the child process of TestKillDuringUpdate: one update
// run of the endpoint in the given directory from the given origin.
func TestKillHelper(t *testing.T) {
	arg := os.Getenv(killHelperEnv)
	if arg == "" {
		t.Skip("helper process of TestKillDuringUpdate")
	}
	dir, origin, _ := strings.Cut(arg, "|")
	rep, err := childRun(dir, origin)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Result == report.Failed {
		t.Fatalf("run failed: %+v", rep.Category(category.Components))
	}
}

func childRun(dir, origin string) (*report.Report, error) {
	now := func() time.Time { return time.Now().UTC() }
	vendor, err := trust.Open(filepath.Join(dir, "trust"), trust.Options{Kind: "vendor", Now: now})
	if err != nil {
		return nil, err
	}
	inst, err := install.Open(filepath.Join(dir, "installed"), install.Options{Now: now})
	if err != nil {
		return nil, err
	}
	defer inst.Close()
	r, err := New(Options{Vendor: vendor, Install: inst, Fetcher: fetch.New(fetch.Options{}), Now: now,
		Resolve: func(s policy.Source) ([]string, error) { return []string{origin}, nil }})
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse([]byte(fmt.Sprintf("origin: %q\nserver: https://s.invalid/\ndownload_from_origin: true\nfallback_to_server: {components: false}\nclients: {source: customized}\n", origin)))
	if err != nil {
		return nil, err
	}
	pl := plan.For(p, plan.Endpoint{Role: plan.RoleClient, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, plan.NotifyComponents)
	return r.Run(context.Background(), Request{Plan: pl}), nil
}

// TestKillDuringUpdate kills (SIGKILL) an endpoint process at random
// points of 50 update runs of a multi-file component. After each kill the
// installed component is exactly the old or the new version, verified by
// hash, and the next run completes and installs the new version.
func TestKillDuringUpdate(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("kill test: runs without -race and -short (scripts/test runs it so)")
	}
	w := newWorld(t)
	origin := w.serveDir(filepath.Dir(w.origin.PublishedDir()))
	dir := t.TempDir()
	root, _ := w.origin.TrustedRoot()
	if _, err := trust.Init(filepath.Join(dir, "trust"), root, trust.Options{Kind: "vendor", Now: w.now}); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	versions := map[string]map[string]string{} // version -> file -> sha256
	typical := 200 * time.Millisecond
	kills, killedAfterSwitch := 0, 0
	for i := 1; i <= 50; i++ {
		ver := fmt.Sprintf("%d.0", i)
		versions[ver] = publishBig(t, w.origin, ver, r)
		old := installedVersion(t, dir)
		if runMaybeKilled(t, helperCmd(dir, origin), r, &typical) {
			kills++
		}
		got := installedVersion(t, dir)
		if got == ver && got != old {
			killedAfterSwitch++
		}
		if got != old && got != ver {
			t.Fatalf("run %d: installed %q after the kill, want %q or %q", i, got, old, ver)
		}
		verifyInstalled(t, dir, got, versions)
		if out, err := helperCmd(dir, origin).CombinedOutput(); err != nil {
			t.Fatalf("run %d: the run after the kill failed: %v\n%s", i, err, out)
		}
		if got := installedVersion(t, dir); got != ver {
			t.Fatalf("run %d: installed %q after a full run, want %q", i, got, ver)
		}
		verifyInstalled(t, dir, ver, versions)
		if left := cachedCopies(t, dir, versions[ver]); len(left) > 0 {
			t.Fatalf("run %d: the download cache still holds %d file(s) of the installed version %s: %v", i, len(left), ver, left)
		}
	}
	t.Logf("%d of 50 runs killed, %d of them after the new version was in place; download cache at the end: %d bytes",
		kills, killedAfterSwitch, dirBytes(t, filepath.Join(dir, "installed", "cache")))
	if kills < 25 {
		t.Errorf("only %d runs were killed: the kill delay no longer covers the run", kills)
	}
}

// runMaybeKilled starts cmd and SIGKILLs it after a random delay below
// *typical (the running mean of the runs that finished, updated here), so
// that kills land anywhere in a run; it reports whether cmd was killed.
func runMaybeKilled(t *testing.T, cmd *exec.Cmd, r *rand.Rand, typical *time.Duration) bool {
	t.Helper()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	delay := time.Duration(r.Int64N(int64(*typical)))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		*typical = (*typical + time.Since(start)) / 2
		return false
	case <-time.After(delay):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return true
	}
}

func helperCmd(dir, origin string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+dir+"|"+origin)
	return cmd
}

// publishBig publishes a four-file version of "pattern" (about 3 MiB) and
// returns its files' hashes.
func publishBig(t *testing.T, r *repo.Repo, ver string, rnd *rand.Rand) map[string]string {
	it := repo.Item{Category: "components", Name: "pattern", Version: ver}
	sums := map[string]string{}
	for j, size := range []int{1 << 20, 1 << 20, 768 << 10, 4 << 10} {
		data := make([]byte, size)
		var seed [32]byte
		for k := range seed {
			seed[k] = byte(rnd.IntN(256))
		}
		rand.NewChaCha8(seed).Read(data)
		name := fmt.Sprintf("part%d.bin", j)
		sum := sha256.Sum256(data)
		sums["pattern/"+name] = hex.EncodeToString(sum[:])
		it.Files = append(it.Files, repo.File{Name: name, Data: data})
	}
	if _, err := r.Publish(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	return sums
}

func installedVersion(t *testing.T, dir string) string {
	st, err := install.Inspect(filepath.Join(dir, "installed"))
	if err != nil {
		return ""
	}
	for _, c := range st {
		if c.Category == category.Components && c.Current != nil {
			return c.Current.Items[0].Version
		}
	}
	return ""
}

// cachedCopies returns the names in the download cache (complete or
// partial) of the files whose sha256 are the values of sums.
func cachedCopies(t *testing.T, dir string, sums map[string]string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "installed", "cache"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, s := range sums {
		want[s] = true
	}
	var out []string
	for _, e := range entries {
		if want[strings.TrimSuffix(e.Name(), ".part")] {
			out = append(out, e.Name())
		}
	}
	return out
}

// dirBytes returns the total size of the files in dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// verifyInstalled hashes every installed file against the version's.
func verifyInstalled(t *testing.T, dir, ver string, versions map[string]map[string]string) {
	if ver == "" {
		return
	}
	link := filepath.Join(dir, "installed", "components", "current")
	for rel, want := range versions[ver] {
		f, err := os.Open(filepath.Join(link, rel))
		if err != nil {
			t.Fatalf("version %s: %v", ver, err)
		}
		h := sha256.New()
		io.Copy(h, f)
		f.Close()
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			t.Fatalf("version %s: %s has sha256 %s, want %s", ver, rel, got, want)
		}
	}
}
