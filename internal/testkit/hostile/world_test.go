package hostile_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/hostile"
	"github.com/cascade-update/cascade/internal/trust"
	"github.com/cascade-update/cascade/internal/update"
)

// skewed is how far the clock of the freeze case is moved forward: past
// the expiry of the trusted timestamp (one day by default).
const skewed = 3 * 24 * time.Hour

// world is the history of one vendor repository and the source trees
// built from it, shared read-only by every case:
//
//	s0       after publishing pattern 1.0 (older than what endpoints trust)
//	s1       after 2.0: what every endpoint trusts and has installed
//	s2       after 3.0: the honest mirror's tree
//	expired  s2 with a newer timestamp that expired two days ago
//	future   s2 refreshed as of now+skewed (current for a skewed clock)
//	foreign  another repository (other keys) holding pattern 3.0
type world struct {
	root  []byte
	trees map[string]string
	// honest holds the files of 2.0 and 3.0 by install path; sums the
	// sha256 of every honest file.
	v2, v3 map[string]string
	sums   map[string]bool
	// urls are the honest mirrors of s1, s2 and future.
	urls map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	r, err := repo.Init(filepath.Join(dir, "origin"), repo.InitOptions{
		Options: repo.Options{Now: time.Now}, Settings: repo.Settings{Kind: repo.Vendor, Bins: 16}})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{trees: map[string]string{}, sums: map[string]bool{}}
	if w.root, err = r.TrustedRoot(); err != nil {
		t.Fatal(err)
	}
	published := filepath.Dir(r.PublishedDir())
	for i, ver := range []string{"1.0", "2.0", "3.0"} {
		files := publish(t, r, ver)
		name := fmt.Sprintf("s%d", i)
		w.trees[name] = filepath.Join(dir, name)
		if err := testkit.CopyTree(published, w.trees[name]); err != nil {
			t.Fatal(err)
		}
		switch ver {
		case "2.0":
			w.v2 = files
		case "3.0":
			w.v3 = files
		}
	}
	for _, files := range []map[string]string{w.v2, w.v3} {
		for _, data := range files {
			w.sums[sum([]byte(data))] = true
		}
	}
	w.trees["foreign"] = foreignTree(t, filepath.Join(dir, "foreign"))
	for name, at := range map[string]time.Time{"expired": time.Now().Add(-skewed), "future": time.Now().Add(skewed)} {
		if w.trees[name], err = hostile.RefreshedCopy(ctx, r.Dir(), filepath.Join(dir, name+"-repo"), at); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// foreignTree builds a repository with keys of its own, holding the same
// pattern 3.0, and returns its source tree.
func foreignTree(t *testing.T, dir string) string {
	t.Helper()
	r, err := repo.Init(dir, repo.InitOptions{
		Options: repo.Options{Now: time.Now}, Settings: repo.Settings{Kind: repo.Vendor, Bins: 16}})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, r, "3.0")
	return filepath.Dir(r.PublishedDir())
}

// publish publishes a three-file version of the "pattern" component and
// returns its files by install path. a.ptn is large enough for an
// endpoint to update it by delta (the publisher makes deltas from the
// earlier versions; see patternRecords); b.ptn and sig.dat are not.
func publish(t *testing.T, r *repo.Repo, ver string) map[string]string {
	t.Helper()
	files := map[string]string{}
	it := repo.Item{Category: "components", Name: "pattern", Version: ver}
	for i, n := range []string{"a.ptn", "b.ptn", "sig.dat"} {
		data := strings.Repeat(fmt.Sprintf("%s-%s-%d|", n, ver, i), 1000+i*500)
		if i == 0 {
			data = patternRecords(ver)
		}
		files["pattern/"+n] = data
		it.Files = append(it.Files, repo.File{Name: n, Data: []byte(data)})
	}
	if _, err := r.Publish(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	return files
}

// patternRecords is a.ptn of version ver ("N.0"): 5,000 records of 14
// bytes (70 KB, more than the 64 KiB from which an endpoint looks for a
// delta), each counting the versions up to N that changed it; version k
// changes the records whose number is k modulo 7. So each version
// differs from the one before in a seventh of its records, at places of
// its own, and the deltas from 1.0 and from 2.0 to 3.0 differ.
func patternRecords(ver string) string {
	var n int
	fmt.Sscanf(ver, "%d.", &n)
	var b strings.Builder
	for i := range 5000 {
		c := 0
		for k := 1; k <= n; k++ {
			if i%7 == k {
				c++
			}
		}
		fmt.Fprintf(&b, "a.ptn %05d %d|", i, c)
	}
	return b.String()
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// nextIP hands out distinct loopback addresses, one per source, from
// 127.0.10.2 on.
var nextIP atomic.Int32

func loopback() string { return testkit.LoopbackIP(2500 + int(nextIP.Add(1))) }

// start serves a hostile source on its own loopback address.
func start(t *testing.T, o hostile.Options) *hostile.Server {
	t.Helper()
	s, err := hostile.Start(loopback()+":0", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// serveHonest serves a tree with the product's static handler, as an
// update agent or `cascade origin serve` would, on its own loopback
// address.
func serveHonest(t *testing.T, tree string) string {
	t.Helper()
	h, err := static.New(tree, static.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return testkit.Serve(t, testkit.Listen(t, loopback()), h)
}

// endpoint is a client with its own trust and install stores and a clock
// that a case can move forward.
type endpoint struct {
	runner  *update.Runner
	install *install.Store
	dir     string
	skew    atomic.Int64
}

// suiteFetch are the fetcher bounds of the suite. The minimum rate is
// checked over a short window, so that trickling and stalling sources are
// abandoned within a second; honest transfers here take milliseconds.
// With quick, sources that do not answer are given up after half a
// second (the cases of sources that hang); otherwise the header timeout
// is roomy, so that an honest mirror on a loaded machine is never taken
// for a dead one. A busy source's Retry-After is capped at 50ms.
func suiteFetch(pool *x509.CertPool, quick bool) fetch.Options {
	o := fetch.Options{
		ConnectTimeout:        time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 5 * time.Second,
		Timeout:               20 * time.Second,
		FileTimeout:           20 * time.Second,
		MinRate:               2048,
		RateWindow:            400 * time.Millisecond,
		MaxRetryWait:          50 * time.Millisecond,
		TLSConfig:             &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool},
	}
	if quick {
		o.TLSHandshakeTimeout, o.ResponseHeaderTimeout = 500*time.Millisecond, 500*time.Millisecond
	}
	return o
}

func (w *world) endpoint(t *testing.T, pool *x509.CertPool, quick bool) *endpoint {
	t.Helper()
	e := &endpoint{dir: t.TempDir()}
	now := func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	vendor, err := trust.Init(filepath.Join(e.dir, "trust", "vendor"), w.root, trust.Options{Kind: "vendor", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if e.install, err = install.Open(filepath.Join(e.dir, "installed"), install.Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.install.Close() })
	e.runner, err = update.New(update.Options{Vendor: vendor, Install: e.install, Fetcher: fetch.New(suiteFetch(pool, quick)), Now: now,
		Resolve: func(s policy.Source) ([]string, error) { return []string{s.URL}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// run updates the components from the given sources, in order, and
// returns the category's report.
func (e *endpoint) run(t *testing.T, urls ...string) *report.Category {
	t.Helper()
	steps := make([]plan.Step, len(urls))
	for i, u := range urls {
		steps[i] = plan.Step{Source: policy.Source{Kind: policy.URL, URL: u}, Entry: i + 1, Why: "hostile-source suite"}
	}
	p := plan.Plan{Role: plan.RoleClient, Trigger: plan.Manual, Rule: plan.RuleCustomized,
		Categories: map[category.Category][]plan.Step{category.Components: steps}}
	rep := e.runner.Run(context.Background(), update.Request{Plan: p})
	rc := rep.Category(category.Components)
	if rc == nil {
		t.Fatalf("no components in the report %+v", rep)
	}
	return rc
}

// state is what an endpoint holds: its trusted metadata and its installed
// components, each as a map from relative path to sha256, and the hash
// bins it has loaded (the trust store's roles.json: role -> sha256).
type state struct {
	trusted, installed map[string]string
	roles              map[string]string
}

func (e *endpoint) state(t *testing.T) state {
	t.Helper()
	st := state{
		trusted:   digest(t, filepath.Join(e.dir, "trust", "vendor", "current")),
		installed: digest(t, filepath.Join(e.dir, "installed", "components", "current")),
		roles:     map[string]string{},
	}
	b, err := os.ReadFile(filepath.Join(e.dir, "trust", "vendor", "current", "roles.json"))
	if err == nil {
		err = json.Unmarshal(b, &st.roles)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return st
}

// sameTrusted reports the first difference between the trusted metadata
// of got and want, with one allowance: hash bins are loaded when a
// lookup needs them, so got may hold fewer of them than want (an
// endpoint that rebuilt a file from a delta of the first source and took
// the rest from the second one did not look the delta up in the second
// one's bins). Every bin got holds must be want's.
func sameTrusted(what string, got, want state) error {
	strip := func(m map[string]string) map[string]string {
		out := maps.Clone(m)
		delete(out, "roles.json")
		return out
	}
	if err := sameDigests(what, strip(got.trusted), strip(want.trusted)); err != nil {
		return err
	}
	for role, sum := range got.roles {
		if want.roles[role] != sum {
			return fmt.Errorf("%s: role %s is %.12q, want %.12q", what, role, sum, want.roles[role])
		}
	}
	return nil
}

// digest maps every regular file under dir (symlinks followed at the top)
// to its sha256.
func digest(t *testing.T, dir string) map[string]string {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(real, p)
		out[filepath.ToSlash(rel)] = sum(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameDigests reports the first difference between two digests.
func sameDigests(what string, got, want map[string]string) error {
	for p, s := range want {
		if got[p] != s {
			return fmt.Errorf("%s: %s is %.12q, want %.12q", what, p, got[p], s)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			return fmt.Errorf("%s: unexpected %s", what, p)
		}
	}
	return nil
}

// checkInstalled checks by hash that exactly the files of want are
// installed.
func checkInstalled(t *testing.T, e *endpoint, want map[string]string) {
	t.Helper()
	files := map[string]string{}
	for p, data := range want {
		files[p] = sum([]byte(data))
	}
	if err := sameDigests("installed", e.state(t).installed, files); err != nil {
		t.Fatal(err)
	}
}

// checkCache checks the install store's download cache: no partial file
// is left, and every cached file is an honest file under its own sha256.
func (w *world) checkCache(t *testing.T, e *endpoint) {
	t.Helper()
	dir := filepath.Join(e.dir, "installed", "cache")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if s := sum(b); s != ent.Name() || !w.sums[s] {
			t.Errorf("cache holds %s with sha256 %s (honest: %v)", ent.Name(), s, w.sums[s])
		}
	}
}
