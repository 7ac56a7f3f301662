package agent

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/testkit"
)

// TestBucketArithmetic: the shared bucket lets a burst through at once
// and then paces at the nominal rate.
func TestBucketArithmetic(t *testing.T) {
	b := newBucket(1 << 20) // 1 MiB/s: burst 104857 bytes (rate/10)
	t0 := time.Unix(1000, 0)
	if d := b.reserve(t0, 64<<10); d != 0 {
		t.Fatalf("first 64 KiB wait %s", d)
	}
	if d := b.reserve(t0, 64<<10); d <= 0 || d > 30*time.Millisecond {
		t.Fatalf("second 64 KiB at once: wait %s, want about 25ms (beyond the burst)", d)
	}
	// 1 MiB more at the same instant waits about a second more.
	if d := b.reserve(t0, 1<<20); d < 900*time.Millisecond || d > 1100*time.Millisecond {
		t.Fatalf("1 MiB more: wait %s", d)
	}
	// Once idle for long, the bucket is full again.
	if d := b.reserve(t0.Add(time.Minute), 64<<10); d != 0 {
		t.Fatalf("after idling: wait %s", d)
	}
}

// holdDownloads starts n downloads of u whose bodies are not read, so
// they hold their slots (the bandwidth limit keeps them from finishing).
func holdDownloads(t *testing.T, u string, n int) []*http.Response {
	t.Helper()
	var out []*http.Response
	for range n {
		resp, err := http.Get(u)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("held download: %v %v", resp, err)
		}
		out = append(out, resp)
	}
	return out
}

// TestLoadControl: beyond MaxDownloads requests get 503 with Retry-After;
// a cascade client retries within its budget and gets the file once a
// slot frees up; the metrics count it all.
func TestLoadControl(t *testing.T) {
	w := newWorld(t)
	files := w.publish("pattern", "1.0", 4<<20, "big.ptn")
	a := w.startAgent("ua-1", func(o *Options) {
		o.MaxDownloads = 2
		o.RetryAfter = time.Second
		o.BandwidthLimit = 256 << 10
	})
	a.refresh(t, w.url)
	target := "components/pattern/1.0/big.ptn"
	held := holdDownloads(t, consistentURL(a.url, target, files[target]), 2)
	resp, _ := get(t, a.url+"vendor/metadata/timestamp.json", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("third request: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	// A client meets the busy agent, waits, and succeeds after the
	// downloads holding the slots are gone.
	c := w.client(fetch.Options{MaxRetryWait: 10 * time.Second, Timeout: time.Minute})
	done := make(chan error, 1)
	before := a.m.nUnavailable.Load()
	go func() {
		_, err := c.store.Probe(context.Background(), trustSource(a.url), c.f)
		done <- err
	}()
	testkit.Eventually(t, time.Minute, "the client to be turned away by the busy agent", func() bool {
		return a.m.nUnavailable.Load() != before
	})
	for _, r := range held {
		r.Body.Close()
	}
	if err := <-done; err != nil {
		t.Fatalf("client after the agent was busy: %v", err)
	}
	if st := a.Status(); st.PeakDownloads != 2 || st.Unavailable < 2 {
		t.Fatalf("status %+v", st)
	}
	_, body := get(t, a.url+"metrics", nil)
	for _, want := range []string{
		`cascade_agent_unavailable_total{reason="busy"}`,
		`cascade_agent_requests_total{code="503"}`,
		`cascade_agent_requests_total{code="200"}`,
		`cascade_agent_served_timestamp_version{repository="vendor"} 2`,
		`cascade_agent_upstream_fetches_total{repository="vendor",result="ok"} 3`,
		`cascade_agent_clients 1`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestThousandClients: 1,000 clients download from one agent at once;
// the agent never serves more than MaxDownloads at a time, turns the rest
// away with 503 (which the clients retry), and every client ends up with
// the verified file.
func TestThousandClients(t *testing.T) {
	w := newWorld(t)
	files := w.publish("pattern", "1.0", 64<<10, "a.ptn")
	a := w.startAgent("ua-1", func(o *Options) {
		o.MaxDownloads = 8
		o.RetryAfter = time.Second
	})
	a.refresh(t, w.url)
	target := "components/pattern/1.0/a.ptn"
	want := sha256.Sum256(files[target])
	c := w.client(fetch.Options{MaxRetryWait: 2 * time.Second})
	// The clients share trusted metadata that is one version behind
	// nothing: each probe is then the timestamp, the root check and the
	// target, which keeps the test about the agent rather than the
	// clients' verification work.
	v, err := c.store.Probe(context.Background(), trustSource(a.url), c.f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Target(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	if err := c.store.Commit(v); err != nil {
		t.Fatal(err)
	}
	shm := fastDir(t)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := make(chan struct{})
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dst := filepath.Join(shm, fmt.Sprintf("c%d", i))
			err := retry(30, 100*time.Millisecond, func() error {
				return c.fetchFile(context.Background(), a.url, target, dst)
			})
			got, _ := os.ReadFile(dst)
			if err != nil || sha256.Sum256(got) != want {
				failed.Add(1)
				t.Errorf("client %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	st := a.Status()
	if failed.Load() != 0 || st.PeakDownloads > 8 || st.PeakDownloads < 2 {
		t.Fatalf("%d clients failed; peak %d downloads (limit 8)", failed.Load(), st.PeakDownloads)
	}
	t.Logf("requests %d, 503s %d, peak %d", st.Requests, st.Unavailable, st.PeakDownloads)
}
