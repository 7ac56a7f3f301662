package static

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	hashTarget = "vendor/targets/components/pattern/" +
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.pattern.bin"
	secret = "TOP-SECRET-OUTSIDE-THE-TREE"
)

// tree builds a published tree in a temp dir, with a secret file and
// symlinks next to it, and returns the tree's path.
func tree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "published")
	files := map[string]string{
		"vendor/metadata/1.root.json":      `{"signed":{"_type":"root"}}`,
		"vendor/metadata/2.root.json":      `{"signed":{"_type":"root","version":2}}`,
		"vendor/metadata/timestamp.json":   `{"signed":{"_type":"timestamp","version":7}}`,
		"vendor/metadata/7.snapshot.json":  `{"signed":{"_type":"snapshot"}}`,
		"vendor/metadata/7.bins-0a.json":   `{"signed":{"_type":"targets"}}`,
		"vendor/metadata/07.targets.json":  `{"odd":"leading zero: not versioned"}`,
		"vendor/README":                    "not a consistent-snapshot file",
		"vendor/targets/components/x.json": `{"unprefixed":true}`,
		hashTarget:                         strings.Repeat("0123456789abcdef", 4096),
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	secretPath := filepath.Join(base, "secret.txt")
	if err := os.WriteFile(secretPath, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"vendor/escape.json":     "../../secret.txt",
		"vendor/escape-abs.json": secretPath,
		"vendor/inside.json":     "metadata/timestamp.json",
		"vendor/up":              "..",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			t.Skipf("symlinks: %v", err)
		}
	}
	return dir
}

func newHandler(t *testing.T, dir string, opts Options) *Handler {
	t.Helper()
	h, err := New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// do serves one request given as a raw request target.
func do(h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var (
	statETagRE    = regexp.MustCompile(`^"[0-9a-f]+-[0-9a-f]+"$`)
	contentETagRE = regexp.MustCompile(`^"[0-9a-f]{32}"$`)
)

func TestCacheHeaders(t *testing.T) {
	h := newHandler(t, tree(t), Options{MutableMaxAge: 30 * time.Second})
	const mutable = "public, max-age=30"
	tests := []struct {
		path, contentType, cacheControl string
		etag                            *regexp.Regexp
	}{
		{"/vendor/metadata/1.root.json", "application/json", ImmutableCacheControl, statETagRE},
		{"/vendor/metadata/7.snapshot.json", "application/json", ImmutableCacheControl, statETagRE},
		{"/vendor/metadata/7.bins-0a.json", "application/json", ImmutableCacheControl, statETagRE},
		{"/" + hashTarget, "application/octet-stream", ImmutableCacheControl, statETagRE},
		{"/vendor/metadata/timestamp.json", "application/json", mutable, contentETagRE},
		{"/vendor/metadata/07.targets.json", "application/json", mutable, contentETagRE},
		{"/vendor/README", "application/octet-stream", mutable, contentETagRE},
		{"/vendor/targets/components/x.json", "application/json", mutable, contentETagRE},
	}
	for _, tc := range tests {
		w := do(h, "GET", tc.path, nil)
		got := w.Result().Header
		if w.Code != 200 || got.Get("Content-Type") != tc.contentType || got.Get("Cache-Control") != tc.cacheControl ||
			!tc.etag.MatchString(got.Get("ETag")) || got.Get("Last-Modified") == "" ||
			got.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %v", tc.path, w.Code, got)
		}
	}
}

func TestMutableMaxAgeDefault(t *testing.T) {
	for _, age := range []time.Duration{0, 500 * time.Millisecond} {
		h := newHandler(t, tree(t), Options{MutableMaxAge: age})
		if got := do(h, "GET", "/vendor/metadata/timestamp.json", nil).Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("max age %s: Cache-Control %q", age, got)
		}
	}
}

func TestContentETagAcrossRestarts(t *testing.T) {
	dir := tree(t)
	const ts = "/vendor/metadata/timestamp.json"
	etag := do(newHandler(t, dir, Options{}), "GET", ts, nil).Header().Get("ETag")

	// A new process (handler) computes the same ETag and answers 304.
	h := newHandler(t, dir, Options{})
	w := do(h, "GET", ts, map[string]string{"If-None-Match": etag})
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Fatalf("restarted: %d, %q", w.Code, w.Body)
	}
	// Same content with a new modification time: still 304.
	p := filepath.Join(dir, "vendor/metadata/timestamp.json")
	later := time.Now().Add(time.Hour)
	os.Chtimes(p, later, later)
	if w := do(h, "GET", ts, map[string]string{"If-None-Match": etag}); w.Code != http.StatusNotModified {
		t.Fatalf("touched: %d", w.Code)
	}
	// A new timestamp, published by rename: new ETag, full answer.
	tmp := p + ".tmp"
	os.WriteFile(tmp, []byte(`{"signed":{"_type":"timestamp","version":8}}`), 0o644)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	w = do(h, "GET", ts, map[string]string{"If-None-Match": etag})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"version":8`) || w.Header().Get("ETag") == etag {
		t.Fatalf("new timestamp: %d %q %s", w.Code, w.Body, w.Header().Get("ETag"))
	}
}

func TestLargeMutableFileStatETag(t *testing.T) {
	h := newHandler(t, tree(t), Options{ContentHashLimit: 10})
	if got := do(h, "GET", "/vendor/README", nil).Header().Get("ETag"); !statETagRE.MatchString(got) {
		t.Fatalf("ETag %q", got)
	}
}

func TestConditionalImmutable(t *testing.T) {
	h := newHandler(t, tree(t), Options{})
	path := "/" + hashTarget
	w := do(h, "GET", path, nil)
	etag, lastMod := w.Header().Get("ETag"), w.Header().Get("Last-Modified")
	for _, hdr := range []map[string]string{{"If-None-Match": etag}, {"If-Modified-Since": lastMod}} {
		if w := do(h, "GET", path, hdr); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Errorf("%v: %d", hdr, w.Code)
		}
	}
	if w := do(h, "GET", path, map[string]string{"If-None-Match": `"other"`}); w.Code != 200 {
		t.Errorf("other ETag: %d", w.Code)
	}
}

func TestRanges(t *testing.T) {
	dir := tree(t)
	h := newHandler(t, dir, Options{})
	full, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(hashTarget)))
	path := "/" + hashTarget
	w := do(h, "GET", path, map[string]string{"Range": "bytes=100-199"})
	if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), full[100:200]) ||
		w.Header().Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(full)) {
		t.Fatalf("range: %d %v", w.Code, w.Header())
	}
	w = do(h, "GET", path, map[string]string{"Range": "bytes=60000-"})
	if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), full[60000:]) {
		t.Fatalf("open range: %d", w.Code)
	}
	etag := w.Header().Get("ETag")
	if w := do(h, "GET", path, map[string]string{"Range": "bytes=0-9", "If-Range": etag}); w.Code != http.StatusPartialContent {
		t.Fatalf("If-Range match: %d", w.Code)
	}
	if w := do(h, "GET", path, map[string]string{"Range": "bytes=0-9", "If-Range": `"stale"`}); w.Code != 200 || w.Body.Len() != len(full) {
		t.Fatalf("If-Range mismatch: %d", w.Code)
	}
	if w := do(h, "GET", path, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(full))}); w.Code != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("past the end: %d", w.Code)
	}
}

func TestTraversal(t *testing.T) {
	dir := tree(t)
	h := newHandler(t, dir, Options{})
	abs := filepath.ToSlash(filepath.Join(filepath.Dir(dir), "secret.txt"))
	tests := []struct {
		target string
		code   int
	}{
		{"/../secret.txt", 400},
		{"/vendor/../../secret.txt", 400},
		{"/vendor/metadata/../../../secret.txt", 400},
		{"/%2e%2e/secret.txt", 400},
		{"/%2E%2E/secret.txt", 400},
		{"/vendor/%2e%2e/%2e%2e/secret.txt", 400},
		{"/..%2fsecret.txt", 400},
		{"/%2e%2e%2fsecret.txt", 400},
		{"/%252e%252e/secret.txt", 400},
		{"/%252e%252e%252fsecret.txt", 400},
		{"/..%5csecret.txt", 400},
		{"/vendor%5c..%5c..%5csecret.txt", 400},
		{"//etc/passwd", 400},
		{"/vendor//metadata/timestamp.json", 400},
		{"/./vendor/metadata/timestamp.json", 400},
		{"/vendor/metadata/timestamp.json%00", 400},
		{"/vendor/metadata/timestamp.json%00.png", 400},
		{"/c:/secret.txt", 400},
		{"/.hidden", 400},
		{"http://example.com/../secret.txt", 400},
		{"/" + strings.TrimPrefix(abs, "/"), 404},
		{"/vendor/escape.json", 404},
		{"/vendor/escape-abs.json", 404},
		{"/vendor/up/secret.txt", 404},
	}
	for _, tc := range tests {
		for _, method := range []string{"GET", "HEAD"} {
			w := do(h, method, tc.target, nil)
			if w.Code != tc.code || strings.Contains(w.Body.String(), secret) {
				t.Errorf("%s %s: %d %q, want %d", method, tc.target, w.Code, w.Body, tc.code)
			}
		}
	}
	// A symlink that stays inside the tree is an ordinary file.
	if w := do(h, "GET", "/vendor/inside.json", nil); w.Code != 200 || !strings.Contains(w.Body.String(), "timestamp") {
		t.Errorf("inside link: %d", w.Code)
	}
}

// The same attempts over a real connection, where nothing between the
// wire and the handler cleans the path.
func TestTraversalOverTheWire(t *testing.T) {
	h := newHandler(t, tree(t), Options{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, target := range []string{"/../secret.txt", "/%2e%2e/secret.txt", "/%252e%252e/secret.txt", "/vendor/escape.json"} {
		req, err := http.NewRequest("GET", srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = target // sent verbatim
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || bytes.Contains(body, []byte(secret)) {
			t.Errorf("%s: %d %q", target, resp.StatusCode, body)
		}
	}
}

func TestNoDirectoryListing(t *testing.T) {
	h := newHandler(t, tree(t), Options{})
	for _, target := range []string{"/", "/vendor", "/vendor/", "/vendor/metadata", "/vendor/metadata/", "/vendor/up"} {
		if w := do(h, "GET", target, nil); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "timestamp") {
			t.Errorf("%s: %d %q", target, w.Code, w.Body)
		}
	}
}

func TestMethods(t *testing.T) {
	h := newHandler(t, tree(t), Options{})
	const ts = "/vendor/metadata/timestamp.json"
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"} {
		w := do(h, m, ts, nil)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d %v", m, w.Code, w.Header())
		}
	}
	get, head := do(h, "GET", ts, nil), do(h, "HEAD", ts, nil)
	if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Length") != fmt.Sprint(get.Body.Len()) ||
		head.Header().Get("ETag") != get.Header().Get("ETag") {
		t.Errorf("HEAD: %d %v", head.Code, head.Header())
	}
}

func TestClosedHandler(t *testing.T) {
	h, err := New(tree(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if w := do(h, "GET", "/vendor/metadata/timestamp.json", nil); w.Code != http.StatusNotFound {
		t.Fatalf("after Close: %d", w.Code)
	}
}

func TestNewMissingDir(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "nope"), Options{}); err == nil {
		t.Fatal("no error for a missing tree")
	}
}

func TestImmutable(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	for name, want := range map[string]bool{
		"1.root.json":                      true,
		"vendor/metadata/12.targets.json":  true,
		"3.bins-0f.json":                   true,
		"targets/a/" + hex64 + ".file.bin": true,
		hex64 + ".x":                       true,
		"timestamp.json":                   false,
		"0.root.json":                      false,
		"01.root.json":                     false,
		"1..json":                          false,
		"1.json":                           false,
		"1.root.txt":                       false,
		strings.ToUpper(hex64) + ".x":      false,
		hex64[:63] + ".x":                  false,
		hex64 + ".":                        false,
		hex64:                              false,
		"index.json":                       false,
	} {
		if got := immutable(name); got != want {
			t.Errorf("immutable(%q) = %v", name, got)
		}
	}
}

// TestConcurrentMissesAndHits: while misses drop and reopen a directory
// handle, requests for existing files in the same directory, which may
// hold the dropped handle, are served: a handle is closed only once no
// request uses it.
func TestConcurrentMissesAndHits(t *testing.T) {
	h := newHandler(t, tree(t), Options{})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				target, want := "/vendor/metadata/timestamp.json", http.StatusOK
				if (g+i)%2 == 0 {
					target, want = "/vendor/metadata/9.root.json", http.StatusNotFound
				}
				if w := do(h, "GET", target, nil); w.Code != want {
					errs <- fmt.Sprintf("GET %s: %d, want %d", target, w.Code, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	h.Close()
	if w := do(h, "GET", "/vendor/metadata/timestamp.json", nil); w.Code != http.StatusNotFound {
		t.Errorf("after Close: %d, want 404", w.Code)
	}
}
