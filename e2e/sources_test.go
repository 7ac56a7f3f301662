//go:build e2e

package e2e

import (
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
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
	addr := freeAddr(s.t, s.nextIP())
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
	addr := freeAddr(s.t, s.nextIP())
	serveTree(s.t, "empty source", dir, addr)
	return "http://" + addr + "/"
}

// deadAddr returns an address of the site where nothing listens:
// connections are refused.
func (s *site) deadAddr() string { return freeAddr(s.t, s.nextIP()) }

// hang accepts connections on addr and never answers them until the
// test ends: a source that cannot be reached within the fetch timeouts.
func hang(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
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

// copyTree copies the regular files and directories under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(p, target)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// copyFile copies one regular file.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
