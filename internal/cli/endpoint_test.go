package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/testkit"
)

// TestEndpointCommands drives the whole standalone flow through the CLI:
// create and publish a vendor repository, serve it on a loopback address,
// update an endpoint once, inspect its status, publish again, update, and
// roll back.
func TestEndpointCommands(t *testing.T) {
	dir := t.TempDir()
	origin := filepath.Join(dir, "origin")
	mustRun(t, "origin", "init", origin)
	payload := filepath.Join(dir, "lpt.ptn")
	os.WriteFile(payload, []byte("pattern v1"), 0o644)
	mustRun(t, "origin", "publish", origin, "--component", "pattern", "--version", "1.0", payload)

	originURL := testkit.Serve(t, testkit.Listen(t, "127.0.0.2"), http.FileServer(http.Dir(filepath.Join(origin, "published"))))

	hookOut := filepath.Join(dir, "hook.out")
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(
		"origin: %q\nserver: https://server.invalid/\nclients: {source: customized}\nfallback_to_server: {components: false}\n", originURL)), 0o644)
	os.WriteFile(filepath.Join(dir, "endpoint.yaml"), []byte(fmt.Sprintf(`id: test-client
data_dir: data
policy: policy.yaml
addresses: [10.1.2.3]
trusted_roots: {vendor: origin/published/vendor/metadata/1.root.json}
hooks:
  components: ["/bin/sh", "-c", "echo $CASCADE_CATEGORY $CASCADE_VERSION_ID >> %s"]
`, hookOut)), 0o644)
	cfg := filepath.Join(dir, "endpoint.yaml")

	rep := updateOnce(t, cfg)
	if rep.Result != report.Updated || rep.Category(category.Components).Source != "origin" {
		t.Fatalf("first update: %+v", rep.Category(category.Components))
	}
	for _, c := range rep.Categories {
		if c.Category != category.Components && c.Result != report.Skipped {
			t.Errorf("%s: %s, want skipped on a standalone endpoint", c.Category, c.Result)
		}
	}
	out := mustRun(t, "endpoint", "status", "--config", cfg)
	if !strings.Contains(out, "components") || !strings.Contains(out, "pattern 1.0") {
		t.Fatalf("status:\n%s", out)
	}
	checkEndpointStatusOutput(t, out)
	os.WriteFile(payload, []byte("pattern v2"), 0o644)
	mustRun(t, "origin", "publish", origin, "--component", "pattern", "--version", "2.0", payload)
	if rep := updateOnce(t, cfg); rep.Category(category.Components).After["pattern"] != "2.0" {
		t.Fatalf("second update: %+v", rep.Category(category.Components))
	}
	if rep := updateOnce(t, cfg); rep.Category(category.Components).Result != report.UpToDate {
		t.Fatalf("third update: %+v", rep.Category(category.Components))
	}
	mustRun(t, "endpoint", "rollback", "components", "--config", cfg)
	out = mustRun(t, "endpoint", "status", "--config", cfg, "--json")
	if !strings.Contains(out, `"version": "1.0"`) {
		t.Fatalf("after rollback:\n%s", out)
	}
	checkSnakeCase(t, "endpoint status --json", out)
	hooks, _ := os.ReadFile(hookOut)
	if n := strings.Count(string(hooks), "components"); n != 3 {
		t.Errorf("hook ran %d times, want 3 (two installs, one rollback):\n%s", n, hooks)
	}
}

func TestEndpointConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "e.yaml")
	os.WriteFile(cfg, []byte("data_dir: d\ntrusted_roots: {vendor: r.json}\nrole: relay\n"), 0o644)
	code, _, stderr := run("endpoint", "update", "--once", "--config", cfg)
	if code != 2 || !strings.Contains(stderr, `role: "relay" is neither client nor agent`) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	os.WriteFile(cfg, []byte("data_dir: d\ntrusted_roots: {vendor: r.json}\nschedule: {every: 1h}\n"), 0o644)
	code, _, stderr = run("endpoint", "status", "--config", cfg)
	if code != 2 || !strings.Contains(stderr, "every") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, _, stderr = run("endpoint", "update", "--config", cfg)
	if code != 2 || !strings.Contains(stderr, "exactly one of --once and --now") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, stderr := run(args...)
	if code != 0 {
		t.Fatalf("cascade %s: exit %d: %s\n%s", strings.Join(args, " "), code, stderr, out)
	}
	return out
}

func updateOnce(t *testing.T, cfg string) *report.Report {
	t.Helper()
	out := mustRun(t, "endpoint", "update", "--once", "--config", cfg, "--json")
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	return &rep
}
