//go:build unix

package static

import (
	"net/http"
	"path/filepath"
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
