package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// TestServerCommands drives a server through the CLI: init, admin
// create, run, token create, endpoint enroll and update, and a policy of
// 1025 entries refused with the line `cascade explain` prints.
func TestServerCommands(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	originURL := serveOrigin(t, ctx, dir)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	data := filepath.Join(dir, "server")
	out := mustRun(t, "server", "init", data, "--origin", originURL, "--listen", addr, "--url", "https://"+addr+"/",
		"--vendor-root", filepath.Join(dir, "origin", "published", "vendor", "metadata", "1.root.json"))
	fp := field(t, out, "fingerprint:")
	if _, err := api.ParseFingerprint(fp); err != nil {
		t.Fatalf("init output %q: %v", out, err)
	}
	tokFile := filepath.Join(dir, "admin-token")
	mustRun(t, "server", "admin", "create", "--data", data, "--name", "ci", "--out", tokFile)
	done := make(chan error, 1)
	go func() { done <- runServerRun(ctx, serverRunOptions{Data: data, Listener: ln}, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server run: %v", err)
		}
	}()
	admin := []string{"--data", data, "--token-file", tokFile}
	testkit.Eventually(t, 30*time.Second, "the server to list the synced component pattern", func() bool {
		code, out, _ := run(append([]string{"server", "components", "list", "--json"}, admin...)...)
		return code == 0 && strings.Contains(out, `"pattern"`)
	})

	out = mustRun(t, append([]string{"server", "token", "create", "--domain", "default"}, admin...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	cfg := filepath.Join(dir, "ep", "endpoint.yaml")
	mustRun(t, "endpoint", "enroll", "--server", "https://"+addr+"/", "--token", lines[len(lines)-1], "--fingerprint", fp,
		"--config", cfg, "--hostname", "cli-client", "--address", "10.1.2.3")
	rep := updateOnce(t, cfg)
	if c := rep.Category(category.Components); c.Result != report.Updated || c.Source != "server" {
		t.Fatalf("update: %+v", c)
	}
	var eps []api.Endpoint
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"server", "endpoint", "list", "--json"}, admin...)...)), &eps); err != nil ||
		len(eps) != 1 || eps[0].Hostname != "cli-client" {
		t.Fatalf("endpoint list: %+v %v", eps, err)
	}
	testTokenAgents(t, admin, "https://"+addr+"/", fp, dir)

	big := filepath.Join(dir, "big.yaml")
	var b strings.Builder
	fmt.Fprintf(&b, "origin: %s\nserver: https://%s/\ncustom_sources:\n", originURL, addr)
	for i := 0; i < 1025; i++ {
		fmt.Fprintf(&b, "  - {addresses: 10.%d.%d.0/24, source: \"agent:ua-%d\"}\n", i/250, i%250, i)
	}
	if err := os.WriteFile(big, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	code1, _, explainErr := run("explain", "--policy", big, "--role", "client", "--address", "10.0.0.1")
	code2, _, setErr := run(append([]string{"server", "policy", "set", big}, admin...)...)
	if code1 != 2 || code2 != 2 || explainErr != setErr || !strings.Contains(setErr, "custom_sources entry 1025") {
		t.Fatalf("explain: %d %q\npolicy set: %d %q", code1, explainErr, code2, setErr)
	}
}

// testTokenAgents: a token from `server token create` enrolls clients
// only; one created with --agents enrolls an update agent; `token list`
// tells them apart.
func testTokenAgents(t *testing.T, admin []string, serverURL, fp, dir string) {
	enrollAgent := func(token string) (int, string) {
		code, _, stderr := run("endpoint", "enroll", "--server", serverURL, "--token", token, "--fingerprint", fp,
			"--config", filepath.Join(dir, "ua", "endpoint.yaml"), "--hostname", "cli-agent", "--address", "10.1.0.5",
			"--role", "agent", "--agent-id", "ua-cli", "--agent-url", "http://10.1.0.5:8080/")
		return code, stderr
	}
	lastLine := func(out string) string {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}
	out := mustRun(t, append([]string{"server", "token", "create", "--domain", "default"}, admin...)...)
	if !strings.Contains(out, "clients only") {
		t.Errorf("token create: %q does not say clients only", out)
	}
	const refused = "enrollment token does not allow update agents (create one with: cascade server token create --agents)"
	if code, stderr := enrollAgent(lastLine(out)); code == 0 || !strings.Contains(stderr, refused) {
		t.Fatalf("agent with a client token: exit %d, %q", code, stderr)
	}
	out = mustRun(t, append([]string{"server", "token", "create", "--domain", "default", "--agents"}, admin...)...)
	if !strings.Contains(out, "clients and update agents") {
		t.Errorf("token create --agents: %q", out)
	}
	if code, stderr := enrollAgent(lastLine(out)); code != 0 {
		t.Fatalf("agent with an --agents token: exit %d, %q", code, stderr)
	}
	var ts []api.Token
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"server", "token", "list", "--json"}, admin...)...)), &ts); err != nil {
		t.Fatal(err)
	}
	var agents []bool
	for _, tok := range ts {
		agents = append(agents, tok.Agents)
	}
	if fmt.Sprint(agents) != "[false false true]" || ts[1].Uses != 0 || ts[2].Uses != 1 {
		t.Fatalf("token list: %+v", ts)
	}
	out = mustRun(t, append([]string{"server", "token", "list"}, admin...)...)
	if !strings.Contains(out, "ENROLLS") || strings.Count(out, "clients+agents") != 1 || strings.Count(out, "clients ") != 2 {
		t.Fatalf("token list:\n%s", out)
	}
}

// serveOrigin creates an origin with one component and serves it until
// ctx is cancelled.
func serveOrigin(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	origin := filepath.Join(dir, "origin")
	mustRun(t, "origin", "init", origin)
	payload := filepath.Join(dir, "lpt.ptn")
	os.WriteFile(payload, []byte("pattern v1"), 0o644)
	mustRun(t, "origin", "publish", origin, "--component", "pattern", "--version", "1.0", payload)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- runOriginServe(ctx, originServeOptions{Dir: origin, Listener: ln}, io.Discard, io.Discard)
	}()
	t.Cleanup(func() { <-done })
	return "http://" + ln.Addr().String() + "/"
}

// field returns the value after label on a line of out.
func field(t *testing.T, out, label string) string {
	for _, l := range strings.Split(out, "\n") {
		if _, v, ok := strings.Cut(l, label); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q in %q", label, out)
	return ""
}
