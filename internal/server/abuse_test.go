package server_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

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
	body := strings.Repeat("x", 9<<20) // 9 MiB: over enrollment's 1 MiB, and over what the loopback's socket buffers hold
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
