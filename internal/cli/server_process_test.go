package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestServerProcessFlags: `server init` and `server join` declare the
// same --listen, --url, --proxy, --tls-cert and --tls-key (help and
// defaults) and refuse their wrong combinations alike, in one line.
func TestServerProcessFlags(t *testing.T) {
	dir := t.TempDir()
	cmds := map[string][]string{
		"server init": {"server", "init", filepath.Join(dir, "s"), "--origin", "http://o/", "--vendor-root", "r.json"},
		"server join": {"server", "join", "--data", filepath.Join(dir, "j"), "--database", "postgres://db/cascade", "--key-secret", "k"},
	}
	flagLines := map[string]string{}
	for name, args := range cmds {
		for _, tc := range []struct{ extra []string }{
			{[]string{"--tls-cert", "c.pem"}},
			{[]string{"--tls-key", "k.pem"}},
		} {
			code, _, stderr := run(append(args, tc.extra...)...)
			if want := name + ": --tls-cert and --tls-key go together"; code != 2 || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("%s %v: exit %d, %q; want 2 and one line %q", name, tc.extra, code, stderr, want)
			}
		}
		code, _, stderr := run(append(args, "--proxy", "http://u:secret@proxy:3128/")...)
		if code != 2 || !strings.Contains(stderr, "--proxy holds a password") {
			t.Errorf("%s --proxy with a password: exit %d, %q", name, code, stderr)
		}
		help := mustRun(t, strings.Fields(name+" --help")...)
		_, flags, _ := strings.Cut(help, "\nFlags:\n")
		var lines []string
		for _, l := range strings.Split(flags, "\n") {
			f := strings.Fields(l)
			if len(f) > 0 && strings.Contains(" --listen --url --proxy --tls-cert --tls-key ", " "+f[0]+" ") {
				// The URL reaches "the server" or "this process".
				l = strings.Replace(strings.Replace(strings.Join(f, " "), "the server", "X", 1), "this process", "X", 1)
				lines = append(lines, l)
			}
		}
		if len(lines) != 5 || !strings.Contains(help, `address to serve HTTPS on (default ":8443")`) {
			t.Errorf("%s --help: flags %q in\n%s", name, lines, help)
		}
		flagLines[name] = strings.Join(lines, "\n")
	}
	if flagLines["server init"] != flagLines["server join"] {
		t.Errorf("the flags differ:\nserver init:\n%s\nserver join:\n%s", flagLines["server init"], flagLines["server join"])
	}
}
