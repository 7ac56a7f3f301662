package httpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// dialFrom connects to addr from the local address ip.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second)) // a guard against hanging, not a timing assertion
	return c
}

// served reports whether a request on c is answered (false: the
// connection was closed without an answer).
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestLimitPerAddress: connections over the per-address limit are closed
// unanswered while other addresses are still served, and a closed
// connection frees its place.
func TestLimitPerAddress(t *testing.T) {
	ln := LimitPerAddress(listen(t), 2, nil)
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := start(ctx, srv, ln, Options{})
	defer func() {
		cancel()
		if err := wait(t, done); err != nil {
			t.Error(err)
		}
	}()
	addr := ln.Addr().String()
	a1, a2 := dialFrom(t, "127.0.0.2", addr), dialFrom(t, "127.0.0.2", addr)
	if !served(t, a1) || !served(t, a2) {
		t.Fatal("connections within the limit not served")
	}
	if served(t, dialFrom(t, "127.0.0.2", addr)) {
		t.Fatal("a third connection from one address was served")
	}
	if !served(t, dialFrom(t, "127.0.0.3", addr)) {
		t.Fatal("another address was refused")
	}
	// Closing one frees its place once the server has seen the close.
	a1.Close()
	for i := 0; ; i++ {
		if served(t, dialFrom(t, "127.0.0.2", addr)) {
			break
		}
		if i == 200 {
			t.Fatal("a closed connection never freed its place")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !served(t, a2) {
		t.Fatal("the open connection stopped being served")
	}
}
