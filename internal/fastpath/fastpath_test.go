package fastpath

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/static"
)

// fixture is a static tree served twice: by net/http alone and through
// Serve, with the same handler.
type fixture struct {
	files          *static.Handler
	plain, fast    string // addresses
	answered       atomic.Int64
	etag, rootETag string
}

const (
	tsPath   = "/vendor/metadata/timestamp.json"
	rootPath = "/vendor/metadata/1.root.json"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	meta := filepath.Join(dir, "vendor", "metadata")
	if err := os.MkdirAll(meta, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(meta, "timestamp.json"), []byte(`{"signed":{"_type":"timestamp","version":7}}`), 0o644)
	os.WriteFile(filepath.Join(meta, "1.root.json"), []byte(`{"signed":{"_type":"root","version":1}}`), 0o644)
	files, err := static.New(dir, static.Options{MutableMaxAge: 10 * time.Second, RevalidateAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	f := &fixture{files: files}
	newServer := func() *http.Server {
		return &http.Server{Handler: files, ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10}
	}
	ctx, cancel := context.WithCancel(context.Background())
	plainLn := listen(t)
	plain := newServer()
	go plain.Serve(plainLn)
	fastLn := listen(t)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, fastLn, Options{Server: newServer(), Answer: func(dst []byte, r *Request) ([]byte, []byte, bool) {
			out, ok := files.AppendNotModified(dst, r.Path, r.IfNoneMatch)
			var body []byte
			if !ok {
				out, body, ok = files.AppendNotFound(dst, r.Path)
			}
			if ok {
				f.answered.Add(1)
			}
			return out, body, ok
		}})
	}()
	t.Cleanup(func() {
		cancel()
		plain.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	f.plain, f.fast = plainLn.Addr().String(), fastLn.Addr().String()
	f.etag = f.get(t, tsPath).Header.Get("ETag")
	f.rootETag = f.get(t, rootPath).Header.Get("ETag")
	return f
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func (f *fixture) get(t *testing.T, p string) *http.Response {
	t.Helper()
	resp, err := http.Get("http://" + f.fast + p)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
		t.Fatalf("GET %s: %s, ETag %q", p, resp.Status, resp.Header.Get("ETag"))
	}
	return resp
}

// exchange sends raw to addr, half-closes, and returns everything the
// server sent until it closed, with the Date lines removed.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v", err)
	}
	return dateLine.ReplaceAllString(string(b), "")
}

var dateLine = regexp.MustCompile("Date: [^\r]*\r\n")

// TestSameAsNetHTTP: whatever the client sends, the bytes that come back
// through the fast path are those net/http alone sends (Date aside), and
// the requests the package doc promises to answer here are answered here.
func TestSameAsNetHTTP(t *testing.T) {
	f := newFixture(t)
	req := func(method, target, headers string) string {
		return method + " " + target + " HTTP/1.1\r\nHost: agent\r\n" + headers + "\r\n"
	}
	inm := "If-None-Match: " + f.etag + "\r\n"
	tests := []struct {
		name string
		raw  string
		fast int64 // requests answered by the fast path
	}{
		{"revalidation", req("GET", tsPath, inm), 1},
		{"HEAD revalidation", req("HEAD", tsPath, inm), 1},
		{"immutable file", req("GET", rootPath, "If-None-Match: "+f.rootETag+"\r\n"), 1},
		{"ETag lists", req("GET", tsPath, `If-None-Match: "x", W/`+f.etag+"\r\n") + req("GET", tsPath, "If-None-Match: *\r\n"), 2},
		{"lower-case names", "GET " + tsPath + " HTTP/1.1\r\nhost: agent\r\nif-none-match: " + f.etag + "\r\n\r\n", 1},
		{"Connection: close", req("GET", tsPath, inm+"Connection: close\r\n") + req("GET", tsPath, inm), 1},
		{"keep-alive", req("GET", tsPath, inm+"Connection: keep-alive\r\n"), 1},
		{"Connection: CLOSE", req("GET", tsPath, inm+"Connection: CLOSE\r\n"), 1},
		{"Host names and addresses", "GET " + tsPath + " HTTP/1.1\r\nHost: ua_1.corp-x.example:8080\r\n" + inm + "\r\n" +
			"GET " + tsPath + " HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n" + inm + "\r\n", 2},
		{"obs-text in a value", req("GET", tsPath, "User-Agent: caf\xe9\r\n"+inm), 1},
		{"tab in a value", req("GET", tsPath, "User-Agent: a\tb\r\n"+inm), 1},
		{"pipelined, then a full GET, then more", req("GET", tsPath, inm) + req("GET", tsPath, inm) + req("GET", tsPath, "") +
			req("GET", tsPath, inm) + req("HEAD", rootPath, ""), 2},
		{"other ETag", req("GET", tsPath, `If-None-Match: "other"`+"\r\n"), 0},
		{"no If-None-Match", req("GET", tsPath, ""), 0},
		{"HEAD without If-None-Match", req("HEAD", tsPath, ""), 0},
		{"missing file", req("GET", "/vendor/metadata/9.root.json", inm), 1},
		{"missing file, HEAD", req("HEAD", "/vendor/metadata/9.root.json", ""), 1},
		{"missing file, Connection: close", req("GET", "/vendor/metadata/9.root.json", "Connection: close\r\n"), 1},
		{"missing directory", req("GET", "/site/metadata/2.root.json", ""), 1},
		{"missing files, pipelined with revalidations", req("GET", "/vendor/metadata/2.root.json", "") + req("GET", tsPath, inm) +
			req("GET", "/site/metadata/timestamp.json", inm) + req("HEAD", tsPath, inm), 4},
		{"a file below a file", req("GET", tsPath+"/x", ""), 0},
		{"directory", req("GET", "/vendor/metadata/", inm), 0},
		{"traversal", req("GET", "/vendor/../vendor/metadata/timestamp.json", inm), 0},
		{"encoded traversal", req("GET", "/vendor/%2e%2e/vendor/metadata/timestamp.json", inm), 0},
		{"double-encoded traversal", req("GET", "/vendor/%252e%252e/etc/passwd", inm), 0},
		{"query", req("GET", tsPath+"?x=1", inm), 0},
		{"absolute form", req("GET", "http://agent"+tsPath, inm), 0},
		{"POST", req("POST", tsPath, inm+"Content-Length: 5\r\n") + "hello" + req("GET", tsPath, inm), 0},
		{"body on a GET", req("GET", tsPath, inm+"Content-Length: 5\r\n") + "hello" + req("GET", tsPath, inm), 0},
		{"chunked body", req("GET", tsPath, inm+"Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n", 0},
		{"Expect", req("GET", tsPath, inm+"Expect: 100-continue\r\n"), 0},
		{"HTTP/1.0", "GET " + tsPath + " HTTP/1.0\r\n" + inm + "\r\n", 0},
		{"no Host", "GET " + tsPath + " HTTP/1.1\r\n" + inm + "\r\n", 0},
		{"two Hosts", req("GET", tsPath, "Host: other\r\n"+inm), 0},
		{"bad Host", "GET " + tsPath + " HTTP/1.1\r\nHost: a/b\r\n" + inm + "\r\n", 0},
		{"bare LF", "GET " + tsPath + " HTTP/1.1\nHost: agent\nIf-None-Match: " + f.etag + "\n\n", 0},
		{"leading blank line", "\r\n" + req("GET", tsPath, inm), 1},
		{"blank lines between requests", req("GET", tsPath, inm) + "\r\n\r\n" + req("HEAD", tsPath, inm) + "\r\n", 2},
		{"blank line before a request for net/http", req("GET", tsPath, inm) + "\r\n" + req("GET", tsPath, ""), 1},
		{"HTTP/0.9 request line", "GET /\r\n", 0},
		{"HTTP/0.9 after an answer", req("GET", tsPath, inm) + "GET /\r\n", 1},
		{"malformed header line in an incomplete head", req("GET", tsPath, inm) + "GET / HTTP/1.1\r\nbad\r\n", 1},
		{"head cut short", req("GET", tsPath, inm) + "GET / HTTP/1.1\r\nHost: a\r\n", 1},
		{"request line cut short", req("GET", tsPath, inm) + "GET /vendor/meta", 1},
		{"3 bytes after an answer", req("GET", tsPath, inm) + "X\r\n", 1},
		{"4 bytes after an answer", req("GET", tsPath, inm) + "XY\r\n", 1},
		{"first request line cut short", "GE", 0},
		{"folded header", req("GET", tsPath, "X-A: b\r\n c\r\n"+inm), 0},
		{"control character", req("GET", tsPath, "X-A: \x01\r\n"+inm), 0},
		{"head beyond the fast path's buffer", req("GET", tsPath, "X-Pad: "+strings.Repeat("p", 5000)+"\r\n"+inm), 0},
		{"head beyond MaxHeaderBytes", req("GET", tsPath, "X-Pad: "+strings.Repeat("p", 30000)+"\r\n"+inm), 0},
		{"upgrade", req("GET", tsPath, "Connection: Upgrade\r\nUpgrade: websocket\r\n"+inm), 0},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0},
		{"garbage", "HELLO\r\n\r\n", 0},
		{"range on a revalidation", req("GET", tsPath, inm+"Range: bytes=0-3\r\n"), 1},
		{"range", req("GET", tsPath, "Range: bytes=0-3\r\n"), 0},
		{"after a handover, pipelining goes on", req("GET", tsPath, "") + req("GET", tsPath, inm) + req("GET", tsPath, inm), 0},
	}
	// What net/http alone is sent instead, where the fast path ignores
	// empty lines before a request line (RFC 9112 section 2.2), which
	// net/http answers 400 (it ignores them only after a POST).
	plains := map[string]string{
		"leading blank line":                       req("GET", tsPath, inm),
		"blank lines between requests":             req("GET", tsPath, inm) + req("HEAD", tsPath, inm),
		"blank line before a request for net/http": req("GET", tsPath, inm) + req("GET", tsPath, ""),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain := tt.raw
			if p, ok := plains[tt.name]; ok {
				plain = p
			}
			want := exchange(t, f.plain, plain)
			before := f.answered.Load()
			got := exchange(t, f.fast, tt.raw)
			if got != want {
				t.Errorf("through the fast path:\n%q\nnet/http alone:\n%q", got, want)
			}
			if n := f.answered.Load() - before; n != tt.fast {
				t.Errorf("answered by the fast path: %d requests, want %d", n, tt.fast)
			}
			if want == "" {
				t.Error("no answer at all")
			}
		})
	}
}
