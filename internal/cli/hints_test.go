package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/install"
)

// TestHintLockedStore: `endpoint update --once` while another process
// holds the install store names the daemon and the command to ask it.
func TestHintLockedStore(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "origin", "init", filepath.Join(dir, "origin"))
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("origin: http://127.0.0.1:1/\nserver: https://server.invalid/\n"), 0o644)
	cfg := filepath.Join(dir, "endpoint.yaml")
	os.WriteFile(cfg, []byte("id: c\ndata_dir: data\npolicy: policy.yaml\naddresses: [10.1.2.3]\n"+
		"trusted_roots: {vendor: origin/published/vendor/metadata/1.root.json}\n"), 0o644)
	mustRun(t, "endpoint", "status", "--config", cfg) // creates the data directory
	st, err := install.Open(filepath.Join(dir, "data", "installed"), install.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	code, _, stderr := run("endpoint", "update", "--once", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "is `cascade endpoint run` running with this configuration? ask it with `cascade endpoint update --now --config "+cfg+"`") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// TestHintServerUnreachable: an admin command whose server does not
// answer asks whether `cascade server run` runs at its URL.
func TestHintServerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	code, _, stderr := run("server", "status", "--server", "https://"+addr+"/", "--token-file", secretFile(t, "x"))
	if code == 0 || !strings.Contains(stderr, "is `cascade server run` running at https://"+addr+"/?") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// TestHintEnrollServerUnreachable: enrollment at a server that does not
// answer gets the same hint.
func TestHintEnrollServerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, _, stderr := run("endpoint", "enroll", "--server", "https://"+addr+"/", "--token-file", secretFile(t, "x"),
		"--vendor-root-sha256", "sha256:"+strings.Repeat("0", 64),
		"--config", filepath.Join(t.TempDir(), "endpoint.yaml"), "--hostname", "h", "--address", "10.0.0.1")
	if code == 0 || !strings.Contains(stderr, "is `cascade server run` running at https://"+addr+"/?") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
