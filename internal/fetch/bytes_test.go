package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestBytesOK(t *testing.T) {
	var ua atomic.Value
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.Header.Get("User-Agent"))
		w.Write([]byte("hello"))
	})
	opts := testOptions()
	opts.UserAgent = "cascade-test/1"
	got, err := New(opts).Bytes(context.Background(), srv.URL+"/x", 5)
	if err != nil || string(got) != "hello" {
		t.Fatalf("got %q, %v", got, err)
	}
	if ua.Load() != "cascade-test/1" {
		t.Fatalf("User-Agent %q", ua.Load())
	}
}

func TestBytesRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = New(testOptions()).Bytes(context.Background(), "http://"+addr+"/", 10)
	wantClass(t, err, failure.Unreachable)
	if !failure.ConnectionLevel(err) {
		t.Fatal("refused connection is not connection level")
	}
}

func TestBytesHangAfterAccept(t *testing.T) {
	base := rawServer(t, func(c net.Conn) { readRequest(c); io.Copy(io.Discard, c) })
	opts := testOptions()
	opts.ResponseHeaderTimeout = 200 * time.Millisecond
	_, err := New(opts).Bytes(context.Background(), base+"/timestamp.json", 10)
	wantClass(t, err, failure.Unreachable)
}

func TestBytesTotalTimeoutBeforeHeaders(t *testing.T) {
	base := rawServer(t, func(c net.Conn) { readRequest(c); io.Copy(io.Discard, c) })
	opts := testOptions()
	opts.ResponseHeaderTimeout = time.Minute
	opts.Timeout = 200 * time.Millisecond
	_, err := New(opts).Bytes(context.Background(), base+"/timestamp.json", 10)
	wantClass(t, err, failure.Unreachable)
}

func TestBytesStatus(t *testing.T) {
	tests := []struct {
		code      int
		forbidden bool // ForbiddenAsNotFound
		class     failure.Class
		tufCode   int
	}{
		{404, false, failure.NotFound, 404},
		{410, false, failure.NotFound, 410},
		{403, false, failure.HTTPError, 403},
		{403, true, failure.NotFound, 404},
		{500, false, failure.HTTPError, 500},
		{503, false, failure.HTTPError, 503},
		{204, false, failure.HTTPError, 204},
		{206, false, failure.HTTPError, 206},
		{304, false, failure.HTTPError, 304}, // 304 without If-None-Match
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d/%v", tc.code, tc.forbidden), func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.code) })
			opts := testOptions()
			opts.ForbiddenAsNotFound = tc.forbidden
			_, err := New(opts).Bytes(context.Background(), srv.URL+"/x", 10)
			wantClass(t, err, tc.class)
			var he *metadata.ErrDownloadHTTP
			if !errors.As(err, &he) || he.StatusCode != tc.tufCode {
				t.Fatalf("chain %v lacks ErrDownloadHTTP{%d}", err, tc.tufCode)
			}
		})
	}
}

func TestBytesRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/loop/a", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop/b", http.StatusFound) })
	mux.HandleFunc("/loop/b", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop/a", http.StatusFound) })
	mux.HandleFunc("/chain/{n}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/chain/"+r.PathValue("n")+"x", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/two", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/one", http.StatusFound) })
	mux.HandleFunc("/one", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/data", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("data")) })
	mux.HandleFunc("/ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://example.com/x", http.StatusFound)
	})
	srv := serve(t, mux.ServeHTTP)
	f := New(testOptions())
	ctx := context.Background()

	if got, err := f.Bytes(ctx, srv.URL+"/two", 10); err != nil || string(got) != "data" {
		t.Fatalf("two redirects: %q, %v", got, err)
	}
	for _, path := range []string{"/loop/a", "/chain/x", "/ftp"} {
		_, err := f.Bytes(ctx, srv.URL+path, 10)
		wantClass(t, err, failure.HTTPError)
		if !strings.Contains(err.Error(), "redirect refused") {
			t.Fatalf("%s: %v", path, err)
		}
	}
	opts := testOptions()
	opts.MaxRedirects = -1
	_, err := New(opts).Bytes(ctx, srv.URL+"/one", 10)
	wantClass(t, err, failure.HTTPError)
}

func TestBytesRedirectDowngradeRefused(t *testing.T) {
	plain := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("plain")) })
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/x", http.StatusFound)
	}))
	t.Cleanup(secure.Close)
	opts := testOptions()
	opts.TLSConfig = secure.Client().Transport.(*http.Transport).TLSClientConfig
	_, err := New(opts).Bytes(context.Background(), secure.URL+"/x", 10)
	wantClass(t, err, failure.HTTPError)
	if !strings.Contains(err.Error(), "downgraded") {
		t.Fatal(err)
	}
}

func TestBytesTooLong(t *testing.T) {
	body := bytes.Repeat([]byte("a"), 100)
	mux := http.NewServeMux()
	mux.HandleFunc("/declared", func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Write(body[:50])
		w.(http.Flusher).Flush() // no Content-Length: chunked
		w.Write(body[50:])
	})
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := w.Write(body); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/lying", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000000")
		for {
			if _, err := w.Write(body); err != nil {
				return
			}
		}
	})
	srv := serve(t, mux.ServeHTTP)
	f := New(testOptions())
	for _, path := range []string{"/declared", "/chunked", "/endless", "/lying"} {
		_, err := f.Bytes(context.Background(), srv.URL+path, 99)
		wantClass(t, err, failure.Verification)
		var le *metadata.ErrDownloadLengthMismatch
		if !errors.As(err, &le) {
			t.Fatalf("%s: chain %v lacks ErrDownloadLengthMismatch", path, err)
		}
		declared := strings.Contains(err.Error(), "declared")
		if declared != (path == "/declared" || path == "/lying") {
			t.Fatalf("%s: rejected on the wrong ground: %v", path, err)
		}
	}
	for _, path := range []string{"/declared", "/chunked"} {
		got, err := f.Bytes(context.Background(), srv.URL+path, 100)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%s at the exact limit: %d bytes, %v", path, len(got), err)
		}
	}
}

// A server that declares fewer bytes than it sends: only the declared
// bytes are read (the rest is never taken as part of the body); one that
// declares more than it sends before closing has a broken transfer.
func TestBytesDeclaredLengthMismatch(t *testing.T) {
	longer := rawServer(t, func(c net.Conn) {
		readRequest(c)
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhelloEXTRA-BYTES")
		c.Close()
	})
	got, err := New(testOptions()).Bytes(context.Background(), longer+"/x", 100)
	if err != nil || string(got) != "hello" {
		t.Fatalf("got %q, %v", got, err)
	}
	shorter := rawServer(t, func(c net.Conn) {
		readRequest(c)
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello")
		c.Close()
	})
	_, err = New(testOptions()).Bytes(context.Background(), shorter+"/x", 100)
	wantClass(t, err, failure.Unreachable)
}

func TestBytesMalformedReply(t *testing.T) {
	base := rawServer(t, func(c net.Conn) {
		readRequest(c)
		fmt.Fprint(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
		c.Close()
	})
	_, err := New(testOptions()).Bytes(context.Background(), base+"/x", 100)
	wantClass(t, err, failure.HTTPError)
}

// TestBytesHeaderFlood: a source that answers a status line and then
// header lines forever sends a malformed reply (failure.HTTPError), cut
// off at the transport's 64 KiB header limit.
func TestBytesHeaderFlood(t *testing.T) {
	base := rawServer(t, func(c net.Conn) {
		readRequest(c)
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Flood: " + strings.Repeat("f", 1000) + "\r\n"
		for {
			if _, err := fmt.Fprint(c, line); err != nil {
				return
			}
		}
	})
	_, err := New(testOptions()).Bytes(context.Background(), base+"/x", 100)
	wantClass(t, err, failure.HTTPError)
}

func TestBytesTrickle(t *testing.T) {
	srv := serve(t, trickle(20*time.Millisecond))
	opts := testOptions()
	opts.MinRate = 10_000 // a trickle of ~50 B/s is far below
	opts.RateWindow = 200 * time.Millisecond
	_, err := New(opts).Bytes(context.Background(), srv.URL+"/x", 1_000_000)
	wantClass(t, err, failure.TooSlow)
	if !failure.ConnectionLevel(err) {
		t.Fatal("too slow is not connection level")
	}
}

func TestBytesTotalTimeoutDuringBody(t *testing.T) {
	srv := serve(t, stall([]byte("x"), 100))
	opts := testOptions()
	opts.Timeout = time.Second // headers come at once; the body never ends
	_, err := New(opts).Bytes(context.Background(), srv.URL+"/x", 100)
	wantClass(t, err, failure.TooSlow)
}

func TestBytesCancelled(t *testing.T) {
	t.Run("during body", func(t *testing.T) {
		started := make(chan struct{})
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			close(started)
			stall([]byte("x"), 100)(w, r)
		})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-started; time.Sleep(10 * time.Millisecond); cancel() }()
		_, err := New(testOptions()).Bytes(ctx, srv.URL+"/x", 100)
		wantClass(t, err, failure.Local)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v is not context.Canceled", err)
		}
	})
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := New(testOptions()).Bytes(ctx, "http://127.0.0.1:1/x", 100)
		wantClass(t, err, failure.Local)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v is not context.Canceled", err)
		}
	})
}

func TestConditional(t *testing.T) {
	var content atomic.Value
	content.Store("v1")
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		c := content.Load().(string)
		etag := `"` + c + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte(c))
	})
	f := New(testOptions())
	ctx := context.Background()
	r, err := f.Conditional(ctx, srv.URL+"/timestamp.json", 100, "")
	if err != nil || r.NotModified || string(r.Body) != "v1" || r.ETag != `"v1"` {
		t.Fatalf("first: %+v, %v", r, err)
	}
	r2, err := f.Conditional(ctx, srv.URL+"/timestamp.json", 100, r.ETag)
	if err != nil || !r2.NotModified || r2.Body != nil {
		t.Fatalf("unchanged: %+v, %v", r2, err)
	}
	content.Store("v2")
	r3, err := f.Conditional(ctx, srv.URL+"/timestamp.json", 100, r.ETag)
	if err != nil || r3.NotModified || string(r3.Body) != "v2" || r3.ETag != `"v2"` {
		t.Fatalf("changed: %+v, %v", r3, err)
	}
}

func TestBytesInvalidLimit(t *testing.T) {
	_, err := New(testOptions()).Bytes(context.Background(), "http://127.0.0.1:1/x", 0)
	wantClass(t, err, failure.Local)
}
