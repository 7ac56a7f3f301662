package static

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestNotModifiedFastPath: a revalidation answered from the remembered
// ETag carries the headers of http.ServeContent's 304, and a file replaced
// in place (new inode), or a directory removed and recreated, is never
// answered from stale metadata.
func TestNotModifiedFastPath(t *testing.T) {
	dir := tree(t)
	h := newHandler(t, dir, Options{MutableMaxAge: time.Minute})
	const ts = "/vendor/metadata/timestamp.json"
	first := do(h, "GET", ts, nil)
	etag := first.Header().Get("ETag")
	for _, inm := range []string{etag, `"x", ` + etag, "W/" + etag, "*"} {
		w := do(h, "GET", ts, map[string]string{"If-None-Match": inm})
		got := w.Header()
		if w.Code != http.StatusNotModified || got.Get("ETag") != etag || got.Get("Cache-Control") != "public, max-age=60" ||
			got.Get("Last-Modified") != first.Header().Get("Last-Modified") || got.Get("Content-Type") != "" || w.Body.Len() != 0 {
			t.Fatalf("If-None-Match %s: %d %v", inm, w.Code, got)
		}
	}
	if w := do(h, "GET", ts, map[string]string{"If-None-Match": `"other"`}); w.Code != 200 {
		t.Fatalf("other ETag: %d", w.Code)
	}
	// Replace the file the way the mirror does: a new file renamed over.
	p := filepath.Join(dir, "vendor", "metadata", "timestamp.json")
	tmp := p + ".new"
	os.WriteFile(tmp, []byte(`{"signed":{"_type":"timestamp","version":8}}`), 0o644)
	os.Rename(tmp, p)
	w := do(h, "GET", ts, map[string]string{"If-None-Match": etag})
	if w.Code != 200 || w.Header().Get("ETag") == etag {
		t.Fatalf("after replacement: %d %s", w.Code, w.Header().Get("ETag"))
	}
	// Immutable files: 304 without ever having been served.
	w = do(h, "GET", "/"+hashTarget, nil)
	if w2 := do(h, "HEAD", "/"+hashTarget, map[string]string{"If-None-Match": w.Header().Get("ETag")}); w2.Code != http.StatusNotModified ||
		w2.Header().Get("Cache-Control") != ImmutableCacheControl {
		t.Fatalf("immutable: %d %v", w2.Code, w2.Header())
	}
	// A directory removed and recreated is opened again.
	md := filepath.Join(dir, "vendor", "metadata")
	os.RemoveAll(md)
	if w := do(h, "GET", ts, nil); w.Code != http.StatusNotFound {
		t.Fatalf("removed directory: %d", w.Code)
	}
	os.MkdirAll(md, 0o755)
	os.WriteFile(p, []byte(`{"signed":{"_type":"timestamp","version":9}}`), 0o644)
	if w := do(h, "GET", ts, nil); w.Code != 200 || w.Body.String() != `{"signed":{"_type":"timestamp","version":9}}` {
		t.Fatalf("recreated directory: %d %q", w.Code, w.Body)
	}
}

// TestRevalidateAfter: within the window a matching revalidation is
// answered without looking at the disk; Forget ends the window.
func TestRevalidateAfter(t *testing.T) {
	dir := tree(t)
	h := newHandler(t, dir, Options{RevalidateAfter: time.Hour})
	const ts = "/vendor/metadata/timestamp.json"
	etag := do(h, "GET", ts, nil).Header().Get("ETag")
	p := filepath.Join(dir, "vendor", "metadata", "timestamp.json")
	os.WriteFile(p+".new", []byte(`{"signed":{"_type":"timestamp","version":8}}`), 0o644)
	os.Rename(p+".new", p)
	if w := do(h, "GET", ts, map[string]string{"If-None-Match": etag}); w.Code != http.StatusNotModified {
		t.Fatalf("within the window: %d", w.Code)
	}
	h.Forget()
	if w := do(h, "GET", ts, map[string]string{"If-None-Match": etag}); w.Code != 200 {
		t.Fatalf("after Forget: %d", w.Code)
	}
	// Without the option every request checks (TestNotModifiedFastPath).
}
