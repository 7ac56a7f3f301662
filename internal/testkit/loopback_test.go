package testkit

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestLoopbackIP(t *testing.T) {
	for n, want := range map[int]string{0: "127.0.0.1", 1: "127.0.0.2", 249: "127.0.0.250", 250: "127.0.1.1", 521: "127.0.2.22"} {
		if got := LoopbackIP(n); got != want {
			t.Errorf("LoopbackIP(%d) = %s, want %s", n, got, want)
		}
	}
}

// TestServe: the server answers on its own loopback address and is gone
// after the test's cleanup.
func TestServe(t *testing.T) {
	var url string
	t.Run("inner", func(t *testing.T) {
		url = Serve(t, Listen(t, LoopbackIP(7)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello "+r.URL.Path+" "+r.Header.Get("X-Test"))
		}))
		if want := "http://127.0.0.8:"; url[:len(want)] != want {
			t.Fatalf("url %s, want one on %s", url, want)
		}
		resp, b := Get(t, nil, url+"x", map[string]string{"X-Test": "1"})
		if resp.StatusCode != http.StatusOK || string(b) != "hello /x 1" {
			t.Fatalf("%s, body %q", resp.Status, b)
		}
	})
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("the server still answers after the test ended")
	}
}

// TestFreeAddrAndHang: nothing listens on a free address; a hanging
// listener accepts and never answers.
func TestFreeAddrAndHang(t *testing.T) {
	addr := FreeAddr(t, "127.0.0.1")
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection", addr)
	}
	ln := Listen(t, "127.0.0.1")
	Hang(t, ln)
	c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("a hanging source answered (%d bytes, %v)", n, err)
	}
}
