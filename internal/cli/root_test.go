package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestUnknownSubcommandEveryGroup: every command group, given a
// subcommand it does not have, names it and exits with status 2 without
// printing its help on stdout; given none, it says so and exits 2.
func TestUnknownSubcommandEveryGroup(t *testing.T) {
	var groups [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.HasAvailableSubCommands() {
			groups = append(groups, path)
		}
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() {
				walk(s, append(append([]string(nil), path...), s.Name()))
			}
		}
	}
	walk(NewRoot(), nil)
	if len(groups) < 10 {
		t.Fatalf("only %d command groups found: %v", len(groups), groups)
	}
	for _, g := range groups {
		t.Run(strings.Join(append([]string{"cascade"}, g...), " "), func(t *testing.T) {
			code, out, stderr := run(append(g, "xyzzy")...)
			if code != ExitUsage || out != "" || !strings.Contains(stderr, `unknown command "xyzzy"`) ||
				strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
			}
			code, out, stderr = run(g...)
			if code != ExitUsage || out != "" || !strings.Contains(stderr, "missing subcommand") {
				t.Errorf("without a subcommand: exit %d, stdout %q, stderr %q", code, out, stderr)
			}
		})
	}
}

// TestMistypedSubcommand: the nearest subcommand is suggested when one
// is near enough to be a typing mistake.
func TestMistypedSubcommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "foo"}, `server: unknown command "foo"; the commands are admin, agents,`},
		{[]string{"endpoint", "sttaus"}, `endpoint: unknown command "sttaus"; did you mean "status"?`},
		{[]string{"server", "endpoint", "lst"}, `server endpoint: unknown command "lst"; did you mean "list"?`},
		{[]string{"server", "notifications", "shwo", "x"}, `did you mean "show"?`},
		{[]string{"server", "componets", "list"}, `server: unknown command "componets"; did you mean "components"?`},
		{[]string{"explian"}, `cascade: unknown command "explian"; did you mean "explain"?`},
		{[]string{"origin", "pub"}, `did you mean "publish"?`},
	} {
		code, out, stderr := run(tc.args...)
		if code != ExitUsage || out != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("cascade %s: exit %d, stdout %q, stderr %q; want %q", strings.Join(tc.args, " "), code, out, stderr, tc.want)
		}
	}
}

// TestExitStatus: 0 success, 1 the operation failed, 2 the command line
// or an input file is invalid, whichever part of the code notices.
func TestExitStatus(t *testing.T) {
	bad := writePolicy(t, "origin: https://o.example/\nbogus: 1\n")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"policy", "check", writePolicy(t, explainPolicy)}, ExitOK, ""},
		{[]string{"policy", "check"}, ExitUsage, "policy check: accepts 1 arg(s), received 0"},
		{[]string{"policy", "check", "a", "b"}, ExitUsage, "policy check: accepts 1 arg(s), received 2"},
		{[]string{"policy", "check", bad}, ExitUsage, "bogus"},
		{[]string{"server", "status", "extra"}, ExitUsage, `unknown command "extra"`},
		{[]string{"endpoint", "status"}, ExitUsage, "cascade: endpoint status: --config is required\n"},
		{[]string{"endpoint", "rollback", "components"}, ExitUsage, "endpoint rollback: --config is required"},
		{[]string{"server", "run"}, ExitUsage, "server run: --data is required"},
		{[]string{"explain", "--policy", bad}, ExitUsage, "explain: --role is required"},
		{[]string{"explain", "--nope"}, ExitUsage, "unknown flag: --nope"},
		{[]string{"server", "status", "--server", "https://127.0.0.1:1/", "--token-file", secretFile(t, "t")}, ExitFailed, "cascade: "},
	} {
		code, _, stderr := run(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("cascade %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
	}
}

// TestConfigProblemsEachOnALine: a command given an invalid endpoint
// configuration prints every problem on its own line and exits 2.
func TestConfigProblemsEachOnALine(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "endpoint.yaml")
	if err := os.WriteFile(cfg, []byte("data_dri: d\ntrusted_roots: {vendor: r}\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run("endpoint", "status", "--config", cfg)
	want := "cascade: endpoint config " + cfg + `: line 1: unknown field "data_dri" (did you mean "data_dir"?)` + "\n" +
		"cascade: endpoint config " + cfg + `: line 3: unknown field "bogus"` + "\n"
	if code != ExitUsage || out != "" || stderr != want {
		t.Fatalf("exit %d, stdout %q, stderr\n%s\nwant\n%s", code, out, stderr, want)
	}
}
