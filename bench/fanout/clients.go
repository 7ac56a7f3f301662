package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/trust"
)

// group is the connection pool shared by the endpoints of one agent
// (endpoint i is in group i % agents, in both scenarios): one transport,
// one fetcher for metadata, one client for targets. Pools carry
// connections, never trust: every endpoint verifies with its own store.
type group struct {
	transport *http.Transport
	fetcher   *fetch.Fetcher
	client    *http.Client
}

// startGroups creates the endpoints' connection pools.
func (w *world) startGroups(context.Context) error {
	for range w.cfg.Agents {
		t := fetch.DefaultTransport(fetch.Options{})
		t.MaxIdleConns = w.cfg.Concurrency
		t.MaxIdleConnsPerHost = w.cfg.Concurrency
		w.groups = append(w.groups, &group{transport: t, fetcher: fetch.New(fetch.Options{Transport: t}),
			client: &http.Client{Transport: t}})
	}
	return nil
}

// enroll gives every endpoint its own trust store, up to date with
// version 1. The first endpoint of each group is enrolled for real: a
// store initialised with the vendor root, then an update from its
// source (verified, committed). Every other endpoint's store is a copy
// of its group's first one on disk: the same bytes it would have
// committed itself, at a fraction of the cost of 10,000 verifications
// before the measurement even starts.
func (w *world) enroll(ctx context.Context) error {
	w.clients = make([]string, w.cfg.Endpoints)
	for i := range w.clients {
		w.clients[i] = filepath.Join(w.work, "endpoints", strconv.Itoa(i/1000), strconv.Itoa(i))
	}
	first := min(len(w.groups), len(w.clients))
	for i := range first {
		if _, err := trust.Init(w.clients[i], w.root, trust.Options{Kind: string(repo.Vendor), Now: w.now}); err != nil {
			return fmt.Errorf("enroll endpoint %d: %w", i, err)
		}
		if _, err := w.update(ctx, i, oldVersion, make([]byte, 64<<10)); err != nil {
			return fmt.Errorf("enroll: %w", err)
		}
	}
	for i := first; i < len(w.clients); i++ {
		if err := testkit.CopyTree(w.clients[i%len(w.groups)], w.clients[i]); err != nil {
			return fmt.Errorf("enroll endpoint %d: %w", i, err)
		}
	}
	return nil
}

// updateClients updates every endpoint to want, config.Concurrency at a
// time, in endpoint order (so the endpoints in flight are spread over
// the agents), and returns each endpoint's error. It logs the progress
// every ten seconds.
func (w *world) updateClients(ctx context.Context, want string) []error {
	n := len(w.clients)
	errs := make([]error, n)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range min(w.cfg.Concurrency, n) {
		wg.Go(func() {
			buf := make([]byte, 64<<10) // this worker's copy buffer
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				_, errs[i] = w.update(ctx, i, want, buf)
				done.Add(1)
			}
		})
	}
	stop := make(chan struct{})
	var logger sync.WaitGroup
	logger.Go(func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				w.cfg.Log.Printf("%d/%d endpoints done", done.Load(), n)
			}
		}
	})
	wg.Wait()
	close(stop)
	logger.Wait()
	return errs
}

// failures counts the errors and returns the first.
func failures(errs []error) (int, error) {
	n := 0
	var first error
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	return n, first
}

// update is one endpoint's update run: open its own trust store, probe
// its source (root rotation, timestamp, snapshot, targets: verified),
// read the verified index, check that the source offers want, download
// every file of the item verified against the signed length and sha256,
// and only then commit the source's metadata as trusted. It returns the
// target bytes received. buf is the copy buffer of the downloads.
func (w *world) update(ctx context.Context, i int, want string, buf []byte) (int64, error) {
	g := w.groups[i%len(w.groups)]
	src := w.source(i)
	s, err := trust.Open(w.clients[i], trust.Options{Kind: string(repo.Vendor), Now: w.now})
	if err != nil {
		return 0, fmt.Errorf("endpoint %d: %w", i, err)
	}
	v, err := s.Probe(ctx, src, g.fetcher)
	if err != nil {
		return 0, fmt.Errorf("endpoint %d: probe: %w", i, err)
	}
	idx, err := v.Index(ctx, "components")
	if err != nil {
		return 0, fmt.Errorf("endpoint %d: index: %w", i, err)
	}
	it, ok := idx.Items[component]
	if !ok || it.Version != want {
		return 0, failure.Newf(failure.Stale, fmt.Sprintf("endpoint %d: %s", i, src.Name),
			"offers %s version %q, want %q", component, it.Version, want)
	}
	var got int64
	for _, p := range it.Files {
		tf, err := v.Target(ctx, p)
		if err != nil {
			return got, fmt.Errorf("endpoint %d: %w", i, err)
		}
		if w.cfg.Deltas && want == newVersion {
			n, ok, err := w.fromDelta(ctx, g, v, tf)
			got += n
			if err != nil {
				return got, fmt.Errorf("endpoint %d: %w", i, err)
			}
			if ok {
				continue
			}
		}
		n, err := download(ctx, g.client, v, p, tf, buf, nil)
		got += n
		if err != nil {
			return got, fmt.Errorf("endpoint %d: %w", i, err)
		}
	}
	if err := s.Commit(v); err != nil {
		return got, fmt.Errorf("endpoint %d: commit: %w", i, err)
	}
	return got, nil
}

// download streams a target through sha256 (the bytes are then
// dropped, or written to keep if it is not nil) and checks the signed
// length and hash. A busy source (503 with Retry-After) is retried a few
// times.
func download(ctx context.Context, c *http.Client, v *trust.View, p string, tf *metadata.TargetFiles, buf []byte, keep *bytes.Buffer) (int64, error) {
	u, err := v.TargetURL(p, tf)
	if err != nil {
		return 0, err
	}
	op := v.Source().Name + ": " + p
	for attempt := 0; ; attempt++ {
		if keep != nil {
			keep.Reset()
		}
		n, retry, err := downloadOnce(ctx, c, u, op, tf, buf, keep)
		if retry <= 0 || attempt >= 4 {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, failure.New(failure.Local, op, ctx.Err())
		case <-time.After(retry):
		}
	}
}

// downloadOnce is one GET of a target; retry > 0 asks for another try
// after that long (503 with Retry-After).
func downloadOnce(ctx context.Context, c *http.Client, u, op string, tf *metadata.TargetFiles, buf []byte, keep *bytes.Buffer) (int64, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, failure.New(failure.Local, op, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, failure.New(failure.Unreachable, op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return 0, time.Duration(max(secs, 1)) * time.Second, failure.Newf(failure.HTTPError, op, "503 busy")
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, failure.Newf(failure.HTTPError, op, "status %s", resp.Status)
	}
	h := sha256.New()
	var sink io.Writer = h
	if keep != nil {
		sink = io.MultiWriter(h, keep)
	}
	n, err := io.CopyBuffer(sink, io.LimitReader(resp.Body, tf.Length+1), buf)
	if err != nil {
		return n, 0, failure.New(failure.Unreachable, op, err)
	}
	if n != tf.Length {
		return n, 0, failure.Newf(failure.Verification, op, "%d bytes, signed length %d", n, tf.Length)
	}
	if !bytes.Equal(h.Sum(nil), tf.Hashes["sha256"]) {
		return n, 0, failure.Newf(failure.Verification, op, "sha256 does not match the signed hash")
	}
	return n, 0, nil
}
