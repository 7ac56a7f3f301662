package fetch

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// BenchmarkFile streams a target from a local httptest server (which
// serves it with sendfile) to disk through File: hashing, fsync and rename
// included. Besides throughput it reports the peak growth of live heap
// during the downloads, sampled every 2ms, which must not grow with the
// target size:
//
//	go test -run '^$' -bench BenchmarkFile -benchtime 3x ./internal/fetch/
//
// The plain-copy sub-benchmarks are the baseline measured in the same run:
// net/http GET, io.Copy to a file and fsync, without hashing, length
// enforcement or the rate watchdog.
func BenchmarkFile(b *testing.B) {
	for _, size := range []int64{16 << 20, 256 << 20} {
		b.Run(fmt.Sprintf("%dMiB/cascade", size>>20), func(b *testing.B) { benchFile(b, size, false) })
		b.Run(fmt.Sprintf("%dMiB/plain-copy", size>>20), func(b *testing.B) { benchFile(b, size, true) })
	}
}

// plainCopy is the baseline download: GET, copy, fsync.
func plainCopy(url, dst string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func benchFile(b *testing.B, size int64, plain bool) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src.bin")
	sum := writeBenchSource(b, src, size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, src)
	}))
	defer srv.Close()
	f := New(Options{}) // production defaults, minimum rate included
	want := Want{Length: size, SHA256: sum}
	dst := filepath.Join(dir, "dst.bin")

	runtime.GC()
	base := heapLive()
	peak, stop := sampleHeap(2 * time.Millisecond)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		os.Remove(dst)
		var err error
		if plain {
			err = plainCopy(srv.URL+"/t", dst)
		} else {
			err = f.File(context.Background(), srv.URL+"/t", dst, want)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stop()
	b.ReportMetric(float64(*peak-min(base, *peak))/(1<<20), "peak-heap-growth-MiB")
}

// writeBenchSource writes size pseudo-random bytes to path and returns
// their sha256.
func writeBenchSource(b *testing.B, path string, size int64) []byte {
	block := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{}).Read(block)
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	h := sha256.New()
	for n := int64(0); n < size; n += int64(len(block)) {
		block[0]++ // no two blocks alike
		out.Write(block)
		h.Write(block)
	}
	return h.Sum(nil)
}

// heapLive returns the bytes of live and not yet swept heap objects.
func heapLive() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap records the maximum of heapLive every interval until stop is
// called.
func sampleHeap(interval time.Duration) (peak *uint64, stop func()) {
	peak = new(uint64)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			*peak = max(*peak, heapLive())
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	})
	return peak, func() { close(quit); wg.Wait() }
}
