package cli

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// TestServerJoin: `cascade server join` makes a second data directory
// from the PostgreSQL database of a running server (its origin, the
// site repository's newest version) and the key secret, and refuses, in
// one line, a call without its required flags or with the wrong secret.
func TestServerJoin(t *testing.T) {
	code, _, stderr := run("server", "join", "--data", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "--data, --database and --key-secret are required") {
		t.Fatalf("join without flags: exit %d: %s", code, stderr)
	}
	u, err := url.Parse(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	if pw, ok := u.User.Password(); ok { // the CLI refuses a password in a URL
		t.Setenv("PGPASSWORD", pw)
		u.User = url.User(u.User.Username())
	}
	dsn := u.String()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	originURL := serveOrigin(t, ctx, dir)
	ln, first, initOut := initServer(t, dir, "first", originURL, "--database", dsn)
	addr := ln.Addr().String()
	startServer(t, ctx, first, ln)

	wrong := filepath.Join(dir, "wrong-secret")
	os.WriteFile(wrong, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o600)
	second := filepath.Join(dir, "second")
	code, _, stderr = run("server", "join", "--data", second, "--database", dsn, "--key-secret", wrong, "--listen", "127.0.0.1:8444")
	if code == 0 || !strings.Contains(stderr, "not the one that sealed the site keys") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Fatalf("join with the wrong secret: exit %d: %s", code, stderr)
	}
	if entries, _ := os.ReadDir(second); len(entries) > 0 {
		t.Fatalf("a failed join left %d files in %s", len(entries), second)
	}
	got := mustRun(t, "server", "join", "--data", second, "--database", dsn, "--key-secret", filepath.Join(first, "key-secret"),
		"--listen", "127.0.0.1:8444", "--url", "https://127.0.0.1:8444/")
	for _, want := range []string{"joined the server processes in " + second, "origin:       " + originURL, "fingerprint:  sha256:", "site version: "} {
		if !strings.Contains(got, want) {
			t.Errorf("join output lacks %q:\n%s", want, got)
		}
	}
	cfg, err := server.LoadConfig(second)
	if err != nil || cfg.Origin != originURL || cfg.Database != dsn {
		t.Fatalf("joined configuration: %+v %v", cfg, err)
	}
	a, _ := os.ReadFile(filepath.Join(first, "site", "published", "site", "metadata", "1.root.json"))
	b, _ := os.ReadFile(filepath.Join(second, "site", "published", "site", "metadata", "1.root.json"))
	if len(a) == 0 || string(a) != string(b) {
		t.Fatal("the joined data directory holds another site root")
	}

	// The running first server recorded its key: keys list shows it,
	// forget removes it (once).
	fp := regexp.MustCompile(`fingerprint: +(sha256:[0-9a-f]+)`).FindStringSubmatch(initOut)
	if fp == nil {
		t.Fatalf("no fingerprint in the init output:\n%s", initOut)
	}
	if got := mustRun(t, "server", "keys", "list", "--data", first); !strings.Contains(got, fp[1]+"  https://"+addr+"/") {
		t.Fatalf("keys list lacks the first server's key %s at https://%s/:\n%s", fp[1], addr, got)
	}
	if got := mustRun(t, "server", "keys", "forget", "--data", first, fp[1]); !strings.Contains(got, "forgot server key "+fp[1]) {
		t.Fatalf("keys forget: %s", got)
	}
	if got := mustRun(t, "server", "keys", "list", "--data", first); strings.Contains(got, fp[1]) {
		t.Fatalf("keys list after forget:\n%s", got)
	}
	code, _, stderr = run("server", "keys", "forget", "--data", first, fp[1])
	if code == 0 || !strings.Contains(stderr, "no server key "+fp[1]+" is recorded") {
		t.Fatalf("forget twice: exit %d: %s", code, stderr)
	}
}
