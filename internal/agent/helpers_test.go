package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/trust"
)

// world is an origin repository served on a loopback address, with a
// counter of target requests, and the next free 127.0.0.x address.
type world struct {
	t       *testing.T
	origin  *repo.Repo
	url     string
	targets atomic.Int64 // target requests the origin answered
	tamper  atomic.Bool  // flip a byte of every target the origin sends
	nextIP  atomic.Int32
}

func now() time.Time { return time.Now().UTC() }

func newWorld(t *testing.T) *world {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "origin"), repo.InitOptions{Options: repo.Options{Now: now},
		Settings: repo.Settings{Kind: repo.Vendor, Bins: 16}})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, origin: r}
	w.nextIP.Store(20)
	h, err := static.New(filepath.Dir(r.PublishedDir()), static.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	w.url = w.serve(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/targets/") {
			w.targets.Add(1)
			if w.tamper.Load() {
				h.ServeHTTP(&tamperWriter{ResponseWriter: rw}, req)
				return
			}
		}
		h.ServeHTTP(rw, req)
	}))
	return w
}

// tamperWriter flips the first byte of a body.
type tamperWriter struct {
	http.ResponseWriter
	done bool
}

func (tw *tamperWriter) Write(b []byte) (int, error) {
	if !tw.done && len(b) > 0 {
		tw.done = true
		c := bytes.Clone(b)
		c[0] ^= 0xff
		return tw.ResponseWriter.Write(c)
	}
	return tw.ResponseWriter.Write(b)
}

// listen binds the next 127.0.0.x address, port 0.
func (w *world) listen() net.Listener {
	w.t.Helper()
	return testkit.Listen(w.t, testkit.LoopbackIP(int(w.nextIP.Add(1))))
}

// serve serves h on a fresh loopback address until the test ends.
func (w *world) serve(h http.Handler) string { return testkit.Serve(w.t, w.listen(), h) }

// publish publishes a version of a component with the given files; each
// file's content is derived from its name and the version, size bytes
// long.
func (w *world) publish(name, ver string, size int, files ...string) map[string][]byte {
	w.t.Helper()
	out := map[string][]byte{}
	it := repo.Item{Category: "components", Name: name, Version: ver}
	for _, f := range files {
		data := bytes.Repeat([]byte(name+ver+f+"|"), size/len(name+ver+f+"|")+1)[:size]
		out[index.ItemPath("components", name, ver, f)] = data
		it.Files = append(it.Files, repo.File{Name: f, Data: data})
	}
	if _, err := w.origin.Publish(context.Background(), it); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) root() []byte {
	w.t.Helper()
	b, err := w.origin.TrustedRoot()
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// agentFixture is a running agent.
type agentFixture struct {
	*Agent
	url    string
	dir    string // the agent's Dir
	state  string
	cancel context.CancelFunc
	done   chan error
}

// startAgent creates and runs an agent on a fresh loopback address.
// tweak may adjust its options.
func (w *world) startAgent(id string, tweak func(*Options)) *agentFixture {
	w.t.Helper()
	base := w.t.TempDir()
	o := Options{ID: id, Dir: filepath.Join(base, "served"), StateDir: filepath.Join(base, "state"),
		Roots: map[string][]byte{"vendor": w.root()}, Now: now, Listener: w.listen(), ShutdownTimeout: time.Second,
		Fetch: fetch.Options{ResponseHeaderTimeout: 5 * time.Second, MinRate: -1}}
	if tweak != nil {
		tweak(&o)
	}
	return w.runAgent(o)
}

func (w *world) runAgent(o Options) *agentFixture {
	w.t.Helper()
	a, err := New(o)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &agentFixture{Agent: a, url: "http://" + o.Listener.Addr().String() + "/", dir: o.Dir, state: o.StateDir,
		cancel: cancel, done: make(chan error, 1)}
	go func() { f.done <- a.Run(ctx) }()
	w.t.Cleanup(f.stop)
	return f
}

// stop stops the agent and waits for Run to return (idempotent).
func (f *agentFixture) stop() {
	f.cancel()
	if f.done != nil {
		<-f.done
		f.done = nil
		f.Close()
	}
}

func (f *agentFixture) refresh(t *testing.T, src string) {
	t.Helper()
	if _, err := f.Refresh(context.Background(), "vendor", trust.Source{Name: src, Base: src}); err != nil {
		t.Fatal(err)
	}
}

// client is a lightweight endpoint: its own trusted metadata and fetcher.
type client struct {
	store *trust.Store
	f     *fetch.Fetcher
	dir   string
}

func (w *world) client(fo fetch.Options) *client {
	w.t.Helper()
	dir := w.t.TempDir()
	st, err := trust.Init(filepath.Join(dir, "trust"), w.root(), trust.Options{Kind: "vendor", Now: now})
	if err != nil {
		w.t.Fatal(err)
	}
	if fo.ResponseHeaderTimeout == 0 {
		fo.ResponseHeaderTimeout = 5 * time.Second
	}
	if fo.MinRate == 0 {
		fo.MinRate = -1
	}
	return &client{store: st, f: fetch.New(fo), dir: dir}
}

// fetchFile probes base and downloads one target to dst, verified against
// the client's trusted metadata.
func (c *client) fetchFile(ctx context.Context, base, target, dst string) error {
	v, err := c.store.Probe(ctx, trust.Source{Name: base, Base: base}, c.f)
	if err != nil {
		return err
	}
	tf, err := v.Target(ctx, target)
	if err != nil {
		return err
	}
	return v.Download(ctx, target, tf, dst, nil)
}

// get fetches a URL with plain net/http.
func get(t *testing.T, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	return testkit.Get(t, nil, u, hdr)
}

// consistentURL is the URL of a target at a source.
func consistentURL(base, target string, data []byte) string {
	sum := sha256.Sum256(data)
	dir, file := filepath.Split(target)
	return strings.TrimRight(base, "/") + "/vendor/targets/" + dir + fmt.Sprintf("%x", sum) + "." + file
}

// servedTargets lists the target files of an agent's tree (no dotfiles).
func servedTargets(t *testing.T, dir string) []string {
	var out []string
	root := filepath.Join(dir, "vendor", "targets")
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// retry calls fn until it succeeds or attempts run out, as an update run
// over one source would be retried by the next run.
func retry(attempts int, pause time.Duration, fn func() error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(); err == nil {
			return nil
		}
		time.Sleep(pause)
	}
	return errors.Join(errors.New("out of attempts"), err)
}

func trustSource(base string) trust.Source { return trust.Source{Name: base, Base: base} }

// fastDir is a temporary directory in memory when the system has one
// (fsyncs of a thousand downloads would otherwise dominate a test).
func fastDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "cascade-agent-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}
