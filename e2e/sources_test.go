//go:build e2e

package e2e

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/testkit"
)

// mirrorSource is a custom URL source: a copy of the origin made by
// `cascade mirror`, served by a static HTTP server (`cascade origin
// serve` standing in for nginx or a CDN).
type mirrorSource struct {
	s    *site
	name string
	dir  string // the served tree is dir/published
	url  string
	proc *proc
}

// mirror copies the origin into a new mirror and serves it on its own
// address.
func (s *site) mirror(name string) *mirrorSource {
	s.t.Helper()
	m := &mirrorSource{s: s, name: name, dir: filepath.Join(s.dir, name)}
	mustCascade(s.t, nil, "mirror", "--from", s.originURL, "--to", filepath.Join(m.dir, "published"), "--root", s.originRoot)
	addr := testkit.FreeAddr(s.t, s.nextIP())
	m.url = "http://" + addr + "/"
	m.proc = serveTree(s.t, name, m.dir, addr)
	return m
}

// refresh brings the mirror up to date with the origin.
func (m *mirrorSource) refresh() {
	m.s.t.Helper()
	mustCascade(m.s.t, nil, "mirror", "--from", m.s.originURL, "--to", filepath.Join(m.dir, "published"))
}

// emptySource serves an empty tree: every request is answered 404.
func (s *site) emptySource() string {
	s.t.Helper()
	dir := filepath.Join(s.dir, "empty")
	if err := os.MkdirAll(filepath.Join(dir, "published"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	addr := testkit.FreeAddr(s.t, s.nextIP())
	serveTree(s.t, "empty source", dir, addr)
	return "http://" + addr + "/"
}

// brokenSource answers every request with 500 Internal Server Error.
func (s *site) brokenSource() string {
	s.t.Helper()
	return testkit.Serve(s.t, testkit.Listen(s.t, s.nextIP()), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
}

// refuser accepts connections on addr, reads the request line and
// closes them: a source that cannot be reached (the connection drops
// before any answer), and a record of what an endpoint asked it.
type refuser struct {
	ln    net.Listener
	done  chan struct{}
	mu    sync.Mutex
	lines []string // the request lines received ("" for a connection that sent none)
}

// refuse starts a refuser on addr until the test ends.
func refuse(t *testing.T, addr string) *refuser {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &refuser{ln: ln, done: make(chan struct{})}
	go func() {
		var conns sync.WaitGroup
		defer close(r.done)
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Each connection on its own: a client's concurrent requests
			// (a probe asks for root and timestamp at once) are each read.
			conns.Go(func() {
				c.SetReadDeadline(time.Now().Add(time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Close()
				r.mu.Lock()
				r.lines = append(r.lines, strings.TrimSpace(line))
				r.mu.Unlock()
			})
		}
	}()
	t.Cleanup(r.close)
	return r
}

// requests returns the request lines received so far.
func (r *refuser) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

// close stops accepting: from then on connections are refused.
func (r *refuser) close() {
	r.ln.Close()
	<-r.done
}

// deadAddr returns an address of the site where nothing listens:
// connections are refused.
func (s *site) deadAddr() string { return testkit.FreeAddr(s.t, s.nextIP()) }

// hang accepts connections on addr and never answers them until the
// test ends: a source that cannot be reached within the fetch timeouts.
func hang(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Hang(t, ln)
}
