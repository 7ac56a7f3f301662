//go:build unix

package endpoint

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestControlSocketNeverOpen: with a permissive umask, the control socket
// is never reachable by another user: when it starts listening it is
// either in a directory only its owner can enter, or already 0600.
func TestControlSocketNeverOpen(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	sock := SocketPath(dir)
	var checked bool
	controlListening = func(path string) {
		checked = true
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("socket %s: %v", path, err)
			return
		}
		if fi.Mode().Perm()&0o077 == 0 {
			return
		}
		for d := filepath.Dir(path); d != dir && d != filepath.Dir(d); d = filepath.Dir(d) {
			if di, err := os.Stat(d); err == nil && di.Mode().Perm()&0o077 == 0 {
				return // others cannot reach it
			}
		}
		t.Errorf("control socket %s listens with mode %v where others can reach it", path, fi.Mode().Perm())
	}
	defer func() { controlListening = nil }()
	ln, err := listenControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !checked {
		t.Fatal("the test hook was not called")
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("data directory holds %d entries, want only the socket", len(entries))
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial the renamed socket: %v", err)
	}
	c.Close()
}
