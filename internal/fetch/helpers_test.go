package fetch

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
)

// testOptions are bounds small enough to keep the tests fast. The rate
// watchdog is off unless a test turns it on.
func testOptions() Options {
	return Options{
		ConnectTimeout:        2 * time.Second,
		ResponseHeaderTimeout: 2 * time.Second,
		Timeout:               20 * time.Second,
		MinRate:               -1,
	}
}

// serve starts an httptest server closed at the end of the test.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// rawServer accepts TCP connections and hands each to handle (in its own
// goroutine); the listener and the goroutines end with the test.
func rawServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); handle(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// readRequest consumes one request head from c.
func readRequest(c net.Conn) {
	buf := make([]byte, 4096)
	var got []byte
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil || len(got) >= 4 && string(got[len(got)-4:]) == "\r\n\r\n" {
			return
		}
	}
}

// wantClass fails the test unless err carries class c.
func wantClass(t *testing.T, err error, c failure.Class) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want class %s", c)
	}
	if got := failure.ClassOf(err); got != c {
		t.Fatalf("got class %q (%v), want %s", got, err, c)
	}
}

// trickle writes one byte every interval until the client goes away.
func trickle(interval time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := w.Write([]byte{'x'}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(interval):
			}
		}
	}
}

// stall sends the headers and part of a body, then waits for the client
// to go away.
func stall(prefix []byte, length int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(length))
		w.WriteHeader(http.StatusOK)
		w.Write(prefix)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}
