package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsNotOnCommandLine: no flag takes a secret (every user can read
// a command line): --token of the admin commands and of enrollment, and a
// password in --database or --proxy, are refused with a line saying
// what to use instead; the admin token file is created anew, 0600, never
// written into an existing file (which keeps its permissions).
func TestSecretsNotOnCommandLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "token", "list", "--server", "https://127.0.0.1:1/", "--token", "cascade_admin_x"}, "--token is refused"},
		{[]string{"server", "endpoint", "list", "--server", "https://127.0.0.1:1/", "--token", "cascade_admin_x"}, "--token-file"},
		{[]string{"endpoint", "enroll", "--server", "https://127.0.0.1:1/", "--token", "cascade_enroll_x",
			"--config", filepath.Join(dir, "ep.yaml")}, "$CASCADE_ENROLL_TOKEN"},
		{[]string{"server", "run", "--data", dir, "--database", "postgres://u:secret@db/cascade"}, "--database holds a password"},
		{[]string{"server", "run", "--data", dir, "--database", "postgres://db/cascade?password=secret"}, "$PGPASSWORD"},
		{[]string{"server", "admin", "create", "--data", dir, "--database", "postgres://u:secret@db/cascade"}, "--database holds a password"},
		{[]string{"server", "admin", "create", "--data", dir, "--database", "host=db user=u password=secret"}, "--database holds a password"},
		{[]string{"server", "init", filepath.Join(dir, "s"), "--origin", "http://o/", "--vendor-root", "r.json",
			"--proxy", "http://u:secret@proxy:3128/"}, "--proxy holds a password"},
	} {
		code, _, stderr := run(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, %q; want 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
	t.Setenv("CASCADE_ENROLL_TOKEN", "")
	code, _, stderr := run("endpoint", "enroll", "--server", "https://127.0.0.1:1/", "--config", filepath.Join(dir, "ep.yaml"))
	if code != 2 || !strings.Contains(stderr, "no enrollment token") {
		t.Errorf("enroll without a token: exit %d, %q", code, stderr)
	}
}

// TestAdminCreateOut: --out creates the token file 0600 and refuses an
// existing file, before any token is made.
func TestAdminCreateOut(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "origin", "init", filepath.Join(dir, "origin"))
	data := filepath.Join(dir, "srv")
	mustRun(t, "server", "init", data, "--origin", "http://127.0.0.1:1/", "--listen", "127.0.0.1:0", "--url", "https://127.0.0.1:8443/",
		"--vendor-root", filepath.Join(dir, "origin", "published", "vendor", "metadata", "1.root.json"))
	existing := filepath.Join(dir, "world-readable.token")
	if err := os.WriteFile(existing, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run("server", "admin", "create", "--data", data, "--out", existing)
	if code != 2 || !strings.Contains(stderr, "exists") || strings.Contains(stdout, "cascade_") {
		t.Errorf("--out onto an existing file: exit %d, %q %q", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(existing); string(b) != "old\n" {
		t.Errorf("the existing file was changed: %q", b)
	}
	fresh := filepath.Join(dir, "admin.token")
	out := mustRun(t, "server", "admin", "create", "--data", data, "--out", fresh)
	fi, err := os.Stat(fresh)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(fresh)
	if tok := strings.TrimSpace(string(b)); tok == "" || !strings.Contains(out, tok) {
		t.Fatalf("token file %q, output %q", b, out)
	}
}
