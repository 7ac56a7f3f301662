package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
)

// rawConn opens a TLS connection to the server speaking HTTP/1.1 only,
// for tests that control every byte a client sends.
func (e *env) rawConn(t *testing.T) *tls.Conn {
	t.Helper()
	cfg := api.PinnedTLSConfig(e.fp)
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", e.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second)) // a guard against hanging, not a timing assertion
	return c
}

// TestOversizedBodyGets413: a client that sends a body over the limit in
// full before it reads reads the 413, not a connection reset.
func TestOversizedBodyGets413(t *testing.T) {
	e := newEnv(t, sqliteDB)
	c := e.rawConn(t)
	body := strings.Repeat("x", 9<<20) // 9 MiB: over enrollment's 64 KiB, and over what the loopback's socket buffers hold
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		api.PathEnroll, e.addr, len(body))
	if _, err := c.Write([]byte(head + body)); err != nil {
		t.Fatalf("send the whole request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

// clientFrom returns an API client pinned to the server with token that
// connects from the local address ip (127.0.0.0/8 are all local).
func (e *env) clientFrom(t *testing.T, ip, token string) *api.Client {
	t.Helper()
	tr := api.NewTransport(e.fp, nil)
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext
	t.Cleanup(tr.CloseIdleConnections)
	c, err := api.NewClient(api.ClientOptions{URL: e.url, Token: token, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEnrollmentRateLimit: past its burst, one address's enrollment
// requests are answered 429 with Retry-After, before the token is looked
// at; another address still enrolls.
func TestEnrollmentRateLimit(t *testing.T) {
	e := newEnv(t, sqliteDB, func(c *server.Config) {
		c.Limits.EnrollPerMinute, c.Limits.EnrollBurst = 1, 3
	})
	ctx := context.Background()
	flood := e.clientFrom(t, "127.0.0.3", "")
	for i := range 3 {
		err := flood.Call(ctx, http.MethodPost, api.PathEnroll, nil, api.EnrollRequest{Token: "cascade_enroll_wrong", Hostname: "x"}, nil)
		if statusCode(err) != http.StatusForbidden {
			t.Fatalf("wrong token %d within the burst: %v, want 403", i+1, err)
		}
	}
	// Past the burst even a good token waits.
	good := api.EnrollRequest{Token: e.token("default", 1), Hostname: "pc-1"}
	err := flood.Call(ctx, http.MethodPost, api.PathEnroll, nil, good, nil)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || se.RetryAfter <= 0 {
		t.Fatalf("past the burst: %#v, want 429 with Retry-After", err)
	}
	var res api.EnrollResponse
	if err := e.clientFrom(t, "127.0.0.4", "").Call(ctx, http.MethodPost, api.PathEnroll, nil, good, &res); err != nil || res.Credential == "" {
		t.Fatalf("enrollment from another address: %v", err)
	}
}

// TestSlowBodyCutOff: a client that stops sending its body is answered
// 408 once the body timeout passes, and its connection is closed; the
// deadline does not outlive a body that was sent (the same connection
// then serves another request after the timeout).
func TestSlowBodyCutOff(t *testing.T) {
	e := newEnv(t, sqliteDB, func(c *server.Config) { c.Limits.BodyTimeout = server.Duration(100 * time.Millisecond) })
	c := e.rawConn(t)
	br := bufio.NewReader(c)
	// A whole body first, then a pause longer than the timeout.
	send := func(body string, declared int) {
		t.Helper()
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			api.PathEnroll, e.addr, declared)
		if _, err := c.Write([]byte(head + body)); err != nil {
			t.Fatal(err)
		}
	}
	read := func() *http.Response {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read the answer: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	whole := `{"token":"cascade_enroll_wrong","hostname":"pc-1"}`
	send(whole, len(whole))
	if resp := read(); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("whole body: %d, want 403", resp.StatusCode)
	}
	time.Sleep(300 * time.Millisecond) // past the body timeout: the connection must still be usable
	send(whole, len(whole))
	if resp := read(); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("second request after a pause: %d, want 403", resp.StatusCode)
	}
	// Now a body that stops halfway.
	send(whole[:10], len(whole))
	if resp := read(); resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body: %d, want 408", resp.StatusCode)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the 408 the connection is still open: %v", err)
	}
}

// TestConnectionsPerAddress: connections from one address over the limit
// are closed before the TLS handshake, while other addresses still get
// through.
func TestConnectionsPerAddress(t *testing.T) {
	e := newEnv(t, sqliteDB, func(c *server.Config) { c.Limits.ConnsPerAddress = 2 })
	dial := func(ip string) (*tls.Conn, error) {
		cfg := api.PinnedTLSConfig(e.fp)
		d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := tls.DialWithDialer(d, "tcp", e.addr, cfg)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	for i := range 2 {
		if _, err := dial("127.0.0.5"); err != nil {
			t.Fatalf("connection %d within the limit: %v", i+1, err)
		}
	}
	if _, err := dial("127.0.0.5"); err == nil {
		t.Fatal("a third connection from one address completed its handshake")
	}
	var st api.Status
	if err := e.clientFrom(t, "127.0.0.6", "").Call(context.Background(), http.MethodGet, "/api/v1/status", nil, nil, &st); statusCode(err) != http.StatusUnauthorized {
		t.Fatalf("another address: %v, want an answer (401)", err)
	}
}

// TestSlowBodyCutOffHTTP2: the body deadline holds for HTTP/2 streams
// too (what the endpoints' transport speaks): a body that stops is
// answered 408.
func TestSlowBodyCutOffHTTP2(t *testing.T) {
	e := newEnv(t, sqliteDB, func(c *server.Config) { c.Limits.BodyTimeout = server.Duration(100 * time.Millisecond) })
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(`{"token":`)) // and nothing more
	// A guard against hanging, not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.admin.Endpoint(api.PathEnroll, nil), pr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.admin.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body over %s: %d, want HTTP/2 and 408", resp.Proto, resp.StatusCode)
	}
}
