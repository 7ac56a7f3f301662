package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/cascade-update/cascade/internal/agent"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/trust"
)

// servedTree is an agent's served tree and the URL paths of the files
// the benchmark requests.
type servedTree struct {
	dir, state, root string
	timestamp, big   string // URL paths
}

// setup publishes a component holding a target of size bytes, then fills
// an agent's served tree from it with a real (verified) refresh.
func setup(ctx context.Context, work string, size int64) (*servedTree, error) {
	now := func() time.Time { return time.Now().UTC() }
	r, err := repo.Init(filepath.Join(work, "origin"), repo.InitOptions{Options: repo.Options{Now: now},
		Settings: repo.Settings{Kind: repo.Vendor}})
	if err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(data)
	if _, err := r.Publish(ctx, repo.Item{Category: "components", Name: "bench", Version: "1.0",
		Files: []repo.File{{Name: "big.bin", Data: data}}}); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	root, err := r.TrustedRoot()
	if err != nil {
		return nil, err
	}
	t := &servedTree{dir: filepath.Join(work, "served"), state: filepath.Join(work, "state"), root: filepath.Join(work, "root.json")}
	if err := os.WriteFile(t.root, root, 0o644); err != nil {
		return nil, err
	}
	if err := refreshFrom(ctx, t, filepath.Dir(r.PublishedDir()), root, now); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	t.timestamp = "vendor/metadata/timestamp.json"
	t.big = fmt.Sprintf("vendor/targets/components/bench/1.0/%x.big.bin", sum)
	if fi, err := os.Stat(filepath.Join(t.dir, filepath.FromSlash(t.big))); err != nil || fi.Size() != size {
		return nil, fmt.Errorf("the refresh did not copy the target: %v", err)
	}
	return t, nil
}

// refreshFrom serves the published tree in-process and refreshes an
// agent's served tree from it.
func refreshFrom(ctx context.Context, t *servedTree, published string, root []byte, now func() time.Time) error {
	h, err := static.New(published, static.Options{})
	if err != nil {
		return err
	}
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	a, err := agent.New(agent.Options{ID: "ua-bench", Dir: t.dir, StateDir: t.state,
		Roots: map[string][]byte{"vendor": root}, Now: now})
	if err != nil {
		return err
	}
	defer a.Close()
	u := "http://" + ln.Addr().String() + "/"
	if _, err := a.Refresh(ctx, "vendor", trust.Source{Name: "origin", Base: u}); err != nil {
		return fmt.Errorf("refresh the agent's tree: %w", err)
	}
	return nil
}

// serve is the agent process: `serve -dir D -state S -root R -listen A
// [-no-fast-path]`.
// It serves what an earlier refresh put in D, with no download limit
// below the benchmark's connection counts and no access log.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	dir := fs.String("dir", "", "served tree")
	state := fs.String("state", "", "agent state")
	rootFile := fs.String("root", "", "trusted root")
	listen := fs.String("listen", "127.0.0.1:0", "address")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the agent process to this file")
	noFastPath := fs.Bool("no-fast-path", false, "serve with net/http alone (serve.fast_path: false)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	root, err := os.ReadFile(*rootFile)
	if err != nil {
		return err
	}
	ln, err := agent.Listen(context.Background(), *listen)
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Options{ID: "ua-bench", Dir: *dir, StateDir: *state, Roots: map[string][]byte{"vendor": root},
		Now: time.Now, Listener: ln, MaxDownloads: 1 << 16, NoFastPath: *noFastPath, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Printf("listening %s\n", ln.Addr())
	os.Stdout.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return a.Run(ctx)
}

// baseline is the reference process: net/http answering every request
// 304 at once, with the headers the agent sends, and nothing else. It
// measures what net/http itself costs on this machine.
func baseline() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	os.Stdout.Sync()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Etag", `"baseline"`)
		hdr.Set("Cache-Control", "public, max-age=10")
		hdr.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusNotModified)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
