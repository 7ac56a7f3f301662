package repo

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPublishProgress: Options.Progress hears the copy of a local file
// up to its whole size.
func TestPublishProgress(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(in, make([]byte, 300<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	var file string
	var done, total int64
	r, err := Init(filepath.Join(dir, "repo"), InitOptions{Options: Options{Now: time.Now,
		Progress: func(f string, d, n int64) { file, done, total = f, d, n }}, Settings: Settings{Kind: Vendor}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Publish(context.Background(), Item{Category: "components", Name: "pattern", Version: "1.0",
		Files: []File{{Path: in}}}); err != nil {
		t.Fatal(err)
	}
	if file != in || done != 300<<10 || total != 300<<10 {
		t.Fatalf("progress %s %d of %d", file, done, total)
	}
}
