package testkit

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// The loopback world: the servers of a test (origins, mirrors, servers,
// agents, sources that misbehave) each on an address of their own in
// 127.0.0.0/8, port 0, stopped when the test ends. Tests that need
// distinct sources (by address, as policies and reports name them) hand
// out LoopbackIP(n) for n = 1, 2, ...

// LoopbackIP returns loopback address number n, 127.0.(n/250).(n%250+1):
// n = 0 is 127.0.0.1, and 250 addresses fit before the third byte moves.
func LoopbackIP(n int) string { return fmt.Sprintf("127.0.%d.%d", n/250, n%250+1) }

// Listen listens on ip, port 0, failing the test if it cannot.
func Listen(t testing.TB, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Serve serves h on ln with an http.Server until the test ends (the
// server is closed at cleanup, ln with it) and returns the base URL,
// "http://ADDR/".
func Serve(t testing.TB, ln net.Listener, h http.Handler) string {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// FreeAddr returns ip:port with a port that was free a moment ago: for a
// process whose address must be known before it starts (and stays the
// same across a restart), or for an address where nothing listens, which
// refuses connections.
func FreeAddr(t testing.TB, ip string) string {
	t.Helper()
	ln := Listen(t, ip)
	defer ln.Close()
	return ln.Addr().String()
}

// Hang accepts connections on ln and never answers them until the test
// ends, when ln and every connection are closed: a source that cannot be
// reached within any timeout.
func Hang(t testing.TB, ln net.Listener) {
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
}
