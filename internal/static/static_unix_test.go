//go:build unix

package static

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
)

// A FIFO planted in the tree must neither block the request nor be read.
func TestFIFORefused(t *testing.T) {
	dir := tree(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "vendor/fifo.json"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	h := newHandler(t, dir, Options{})
	if w := do(h, "GET", "/vendor/fifo.json", nil); w.Code != http.StatusNotFound {
		t.Fatalf("fifo: %d", w.Code)
	}
}

// TestMissesDoNotLeakDescriptors: requests for missing files in a cached
// directory (each drops that directory's handle and opens it again)
// leave the process's descriptor count where it started. The garbage
// collector is off meanwhile, so that no finalizer closes what the
// handler forgot to close.
func TestMissesDoNotLeakDescriptors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts /proc/self/fd")
	}
	h := newHandler(t, tree(t), Options{})
	// Fill the directory cache and settle what the runtime opens once.
	do(h, "GET", "/vendor/metadata/timestamp.json", nil)
	do(h, "GET", "/vendor/metadata/9.root.json", nil)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	start := openDescriptors(t)
	var dst []byte
	for i := range 50000 {
		if i%100 == 0 {
			if w := do(h, "GET", "/vendor/metadata/9.root.json", nil); w.Code != http.StatusNotFound {
				t.Fatalf("request %d: %d", i, w.Code)
			}
		} else if _, _, ok := h.AppendNotFound(dst[:0], "/vendor/metadata/9.root.json"); !ok {
			t.Fatalf("request %d: not answered 404", i)
		}
		if i%1000 == 999 {
			if n := openDescriptors(t); n > start+8 {
				t.Fatalf("after %d misses: %d open descriptors, %d before", i+1, n, start)
			}
		}
	}
	if n := openDescriptors(t); n > start+8 {
		t.Fatalf("after 50,000 misses: %d open descriptors, %d before", n, start)
	}
}

// openDescriptors counts the process's open file descriptors.
func openDescriptors(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count descriptors: %v", err)
	}
	return len(entries)
}
