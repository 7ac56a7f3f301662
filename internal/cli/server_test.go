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
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/trust"
)

// TestServerCommands drives a server through the CLI: init, admin
// create, run, token create, endpoint enroll and update, and a policy of
// 1025 entries refused with the line `cascade explain` prints.
func TestServerCommands(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	originURL := serveOrigin(t, ctx, dir)

	ln, data, out := initServer(t, dir, "server", originURL)
	addr := ln.Addr().String()
	fp := field(t, out, "fingerprint:")
	if _, err := api.ParseFingerprint(fp); err != nil {
		t.Fatalf("init output %q: %v", out, err)
	}
	rootHash := strings.Fields(field(t, mustRun(t, "origin", "status", filepath.Join(dir, "origin")), "trusted root 1.root.json:"))[0]
	if got := field(t, out, "vendor root:"); got != rootHash {
		t.Fatalf("server init prints vendor root %s, origin status %s", got, rootHash)
	}
	tokFile := filepath.Join(dir, "admin-token")
	mustRun(t, "server", "admin", "create", "--data", data, "--name", "ci", "--out", tokFile)
	startServer(t, ctx, data, ln)
	admin := []string{"--data", data, "--token-file", tokFile}
	testkit.Eventually(t, 30*time.Second, "the server to list the synced component pattern", func() bool {
		code, out, _ := run(append([]string{"server", "components", "list", "--json"}, admin...)...)
		return code == 0 && strings.Contains(out, `"pattern"`)
	})

	if out := mustRun(t, append([]string{"server", "status"}, admin...)...); field(t, out, "fingerprint") != fp || strings.Contains(out, "{") {
		t.Fatalf("server status:\n%s", out)
	}
	checkSnakeCase(t, "server status --json", mustRun(t, append([]string{"server", "status", "--json"}, admin...)...))

	out = mustRun(t, append([]string{"server", "token", "create", "--domain", "default"}, admin...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	cfg := filepath.Join(dir, "ep", "endpoint.yaml")
	// A second server URL (where nothing listens yet): the site's next
	// server, used when the first cannot be.
	next := "https://" + testkit.FreeAddr(t, testkit.LoopbackIP(41)) + "/"
	mustRun(t, "endpoint", "enroll", "--server", "https://"+addr+"/", "--server", next, "--token-file", secretFile(t, lines[len(lines)-1]), "--fingerprint", fp,
		"--vendor-root-sha256", rootHash, "--config", cfg, "--hostname", "cli-client", "--address", "10.1.2.3")
	if c, err := endpoint.LoadConfig(cfg); err != nil || strings.Join(c.Server, " ") != "https://"+addr+"/ "+next {
		t.Fatalf("enrolled configuration's server: %v %v", c.Server, err)
	}
	rep := updateOnce(t, cfg)
	if c := rep.Category(category.Components); c.Result != report.Updated || c.Source != "server" || c.URL != "https://"+addr+"/" {
		t.Fatalf("update: %+v", c)
	}
	var eps []api.Endpoint
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"server", "endpoint", "list", "--json"}, admin...)...)), &eps); err != nil ||
		len(eps) != 1 || eps[0].Hostname != "cli-client" {
		t.Fatalf("endpoint list: %+v %v", eps, err)
	}
	testTokenAgents(t, admin, "https://"+addr+"/", fp, dir)
	testPinAndScheme(t, addr, fp, tokFile, admin, dir)
	testVendorRootCheck(t, addr, fp, rootHash, admin, dir)

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
	testPolicyLint(t, dir, originURL, addr, big, admin)
}

// testPolicyLint: `server policy lint` against the running server: the
// policy in force, a file, and an invalid file refused with the lines of
// `cascade policy check`.
func testPolicyLint(t *testing.T, dir, originURL, addr, invalid string, admin []string) {
	t.Helper()
	// the bootstrap policy names no agent: the agent enrolled above is unused
	if out := mustRun(t, append([]string{"server", "policy", "lint"}, admin...)...); !strings.HasPrefix(out, "warning: update agent ua-cli (endpoint cli-agent) is named by no entry") ||
		!strings.HasSuffix(out, ": 1 warning against 5 enrolled endpoints (1 update agent)\n") {
		t.Errorf("lint of the policy in force:\n%s", out)
	}
	file := filepath.Join(dir, "lint.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("origin: %s\nserver: https://%s/\ncustom_sources:\n  - {addresses: 10.1.0.0/16, source: \"agent:ua-x\"}\n",
		originURL, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, append([]string{"server", "policy", "lint", file}, admin...)...)
	if !strings.HasPrefix(out, "warning: custom_sources entry 1 (10.1.0.0/16 agent:ua-x): no enrolled update agent has the id ua-x") ||
		strings.Count(out, "warning:") != 2 || !strings.Contains(out, "warning: update agent ua-cli") {
		t.Errorf("lint of %s:\n%s", file, out)
	}
	code1, _, checkErr := run("policy", "check", invalid)
	code2, _, lintErr := run(append([]string{"server", "policy", "lint", invalid}, admin...)...)
	if code1 != 2 || code2 != 2 || checkErr != lintErr {
		t.Errorf("policy check: %d %q\npolicy lint: %d %q", code1, checkErr, code2, lintErr)
	}
}

// testPinAndScheme: every client of the server (enrollment, the admin
// CLI) names both fingerprints when the pin is wrong, and refuses an
// http:// server URL before sending anything.
func testPinAndScheme(t *testing.T, addr, fp, tokFile string, admin []string, dir string) {
	t.Helper()
	key, err := api.ParseFingerprint(fp)
	if err != nil {
		t.Fatal(err)
	}
	wrong := key
	wrong[5] ^= 0x40
	want := "the server's key fingerprint is " + fp + ", the pinned one is " + wrong.String()
	tok := secretFile(t, strings.TrimSpace(lastLineOf(mustRun(t, append([]string{"server", "token", "create"}, admin...)...))))
	for _, args := range [][]string{
		{"endpoint", "enroll", "--server", "https://" + addr + "/", "--token-file", tok, "--fingerprint", wrong.String(),
			"--trust-server-vendor-root", "--config", filepath.Join(dir, "wrong-pin", "endpoint.yaml")},
		{"server", "status", "--server", "https://" + addr + "/", "--fingerprint", wrong.String(), "--token-file", tokFile},
	} {
		code, _, stderr := run(args...)
		if code == 0 || !strings.Contains(stderr, want) || strings.Contains(stderr, "unknown authority") {
			t.Errorf("%s %s with a wrong pin: exit %d, %q; want it to say %q", args[0], args[1], code, stderr, want)
		}
	}
	for _, args := range [][]string{
		{"endpoint", "enroll", "--server", "http://" + addr + "/", "--token-file", tok, "--trust-server-vendor-root",
			"--config", filepath.Join(dir, "http", "endpoint.yaml")},
		{"server", "status", "--server", "http://" + addr + "/", "--token-file", tokFile},
	} {
		code, _, stderr := run(args...)
		if code != 2 || !strings.Contains(stderr, "in clear") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s %s over http://: exit %d, %q", args[0], args[1], code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "http")); err == nil {
		t.Error("enrollment over http:// wrote files")
	}
}

// testVendorRootCheck: enrollment checks the vendor root the server
// sends against the one the administrator brings (file or hash) and
// refuses a different one with both hashes, writing nothing; without a
// check it is refused, unless --trust-server-vendor-root says so.
func testVendorRootCheck(t *testing.T, addr, fp, rootHash string, admin []string, dir string) {
	t.Helper()
	other := filepath.Join(dir, "other-origin")
	mustRun(t, "origin", "init", other)
	otherRoot := filepath.Join(other, "published", "vendor", "metadata", "1.root.json")
	otherHash := strings.Fields(field(t, mustRun(t, "origin", "status", other), "trusted root 1.root.json:"))[0]
	var st api.Status
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"server", "status", "--json"}, admin...)...)), &st); err != nil || st.VendorRootSHA256 != rootHash {
		t.Fatalf("server status: vendor root %q, %v; want %s", st.VendorRootSHA256, err, rootHash)
	}
	enroll := func(name string, check ...string) (int, string) {
		tok := secretFile(t, lastLineOf(mustRun(t, append([]string{"server", "token", "create"}, admin...)...)))
		args := append([]string{"endpoint", "enroll", "--server", "https://" + addr + "/", "--fingerprint", fp, "--token-file", tok,
			"--config", filepath.Join(dir, name, "endpoint.yaml"), "--hostname", name}, check...)
		code, _, stderr := run(args...)
		return code, stderr
	}
	want := "its SHA-256 is " + rootHash + ", the expected one is " + otherHash
	for _, check := range [][]string{{"--vendor-root-sha256", otherHash}, {"--vendor-root", otherRoot}} {
		code, stderr := enroll("mismatch", check...)
		if code == 0 || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("enroll %v: exit %d, %q; want one line with %q", check, code, stderr, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "mismatch")); err == nil {
			t.Errorf("enroll %v: a refused vendor root wrote files", check)
		}
	}
	code, stderr := enroll("unchecked")
	if code != 2 || !strings.Contains(stderr, "--trust-server-vendor-root") {
		t.Errorf("enroll without a vendor root check: exit %d, %q", code, stderr)
	}
	code, stderr = enroll("both", "--vendor-root-sha256", rootHash, "--trust-server-vendor-root")
	if code != 2 {
		t.Errorf("enroll with two vendor root checks: exit %d, %q", code, stderr)
	}
	if code, stderr := enroll("trusting", "--trust-server-vendor-root"); code != 0 {
		t.Errorf("enroll --trust-server-vendor-root: exit %d, %q", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "trusting", "data", "roots", "vendor.json")); err != nil || trust.RootSHA256(b) != rootHash {
		t.Errorf("the trusted vendor root written: %v", err)
	}
}

func lastLineOf(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// testTokenAgents: a token from `server token create` enrolls clients
// only; one created with --agents enrolls an update agent; `token list`
// tells them apart; `server agents list` shows the agent.
func testTokenAgents(t *testing.T, admin []string, serverURL, fp, dir string) {
	enrollAgent := func(token string) (int, string) {
		code, _, stderr := run("endpoint", "enroll", "--server", serverURL, "--token-file", secretFile(t, token), "--fingerprint", fp,
			"--vendor-root", filepath.Join(dir, "origin", "published", "vendor", "metadata", "1.root.json"),
			"--config", filepath.Join(dir, "ua", "endpoint.yaml"), "--hostname", "cli-agent", "--address", "10.1.0.5",
			"--role", "agent", "--agent-id", "ua-cli", "--agent-url", "http://10.1.0.5:8080/")
		return code, stderr
	}
	out := mustRun(t, append([]string{"server", "token", "create", "--domain", "default"}, admin...)...)
	if !strings.Contains(out, "clients only") {
		t.Errorf("token create: %q does not say clients only", out)
	}
	const refused = "enrollment token does not allow update agents (create one with: cascade server token create --agents)"
	if code, stderr := enrollAgent(lastLineOf(out)); code == 0 || !strings.Contains(stderr, refused) {
		t.Fatalf("agent with a client token: exit %d, %q", code, stderr)
	}
	out = mustRun(t, append([]string{"server", "token", "create", "--domain", "default", "--agents"}, admin...)...)
	if !strings.Contains(out, "clients and update agents") {
		t.Errorf("token create --agents: %q", out)
	}
	if code, stderr := enrollAgent(lastLineOf(out)); code != 0 {
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
	// `server agents list` (GET /api/v1/agents) shows the agent enrolled.
	var as []api.AgentInfo
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"server", "agents", "list", "--json"}, admin...)...)), &as); err != nil ||
		len(as) != 1 || as[0].AgentID != "ua-cli" || as[0].Hostname != "cli-agent" || as[0].URL != "http://10.1.0.5:8080/" ||
		as[0].EndpointID == "" || as[0].LastSeen.IsZero() {
		t.Fatalf("agents list --json: %+v %v", as, err)
	}
	out = mustRun(t, append([]string{"server", "agents", "list"}, admin...)...)
	if !strings.Contains(out, "ua-cli  ") || !strings.Contains(out, as[0].EndpointID) || !strings.Contains(out, "http://10.1.0.5:8080/") {
		t.Fatalf("agents list:\n%s", out)
	}
}

// secretFile writes secret to a new file (0600) and returns its name.
func secretFile(t *testing.T, secret string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "secret-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(secret + "\n"); err != nil {
		t.Fatal(err)
	}
	return f.Name()
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

// initServer runs `cascade server init` for the data directory dir/name
// mirroring originURL, with the vendor root of the origin serveOrigin
// made in dir, on a new listener on 127.0.0.1 (its address is the
// server's --listen and --url) and with the flags in extra. It returns the
// listener, the data directory and what init printed.
func initServer(t *testing.T, dir, name, originURL string, extra ...string) (ln net.Listener, data, out string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	data = filepath.Join(dir, name)
	args := append([]string{"server", "init", data, "--origin", originURL, "--listen", addr, "--url", "https://" + addr + "/",
		"--vendor-root", filepath.Join(dir, "origin", "published", "vendor", "metadata", "1.root.json")}, extra...)
	return ln, data, mustRun(t, args...)
}

// startServer runs `cascade server run --data data` on ln until ctx is
// cancelled or the test ends, and waits for its "cascade server at" line
// (once printed, the server listens and holds its data directory). The
// test fails if the run ends with an error. It returns the run's output.
func startServer(t *testing.T, ctx context.Context, data string, ln net.Listener) *testkit.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	out := &testkit.Buffer{}
	done := make(chan error, 1)
	go func() { done <- runServerRun(ctx, serverRunOptions{Data: data, Listener: ln}, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server run: %v", err)
		}
	})
	testkit.Eventually(t, 30*time.Second, "the server's line", func() bool { return strings.Contains(out.String(), "cascade server at") })
	return out
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
