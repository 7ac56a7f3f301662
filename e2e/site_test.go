//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// site is one cascade installation: a vendor origin and a management
// server, each a real process on its own address of the site's loopback
// network 127.0.N.0/24, and the endpoints and sources the test adds.
// Sites do not share anything, so tests with different sites run in
// parallel.
type site struct {
	t   *testing.T
	net int // N of 127.0.N.0/24
	ips int // the last host number handed out
	dir string

	originDir, originRoot, originURL, originListen string
	origin                                         *proc

	serverDir, serverURL, serverListen, fingerprint string
	server                                          *proc
	adminEnv                                        []string // CASCADE_ADMIN_TOKEN for admin commands
	serverEnv                                       []string // siteOptions.Env
	api                                             *api.Client
	enrollToken                                     string // enrolls clients
	agentToken                                      string // enrolls update agents (--agents)

	docs map[string]json.RawMessage // report documents fetched, by server report id
}

// siteOptions tune a site's server (server.json).
type siteOptions struct {
	// AgentTimeout bounds how long clients wait for update agents after a
	// notification (default 1m).
	AgentTimeout time.Duration
	// Database is a PostgreSQL URL (without a password) for the server
	// instead of SQLite; Env is added to the environment of every
	// server command (PGPASSWORD).
	Database string
	Env      []string
}

// newSite creates and starts a site on 127.0.N.0/24: an origin holding
// pattern 1.0 and program agent-core 1.0, served by `cascade origin
// serve`, and a management server that has mirrored it, approved
// agent-core 1.0 for the default domain and made a reusable enrollment
// token.
func newSite(t *testing.T, n int, o siteOptions) *site {
	t.Helper()
	dir, err := os.MkdirTemp("", fmt.Sprintf("ce2e%d-", n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("CASCADE_E2E_KEEP") != "" {
			t.Logf("kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	s := &site{t: t, net: n, ips: 1, dir: dir, docs: map[string]json.RawMessage{}}
	s.initOrigin()
	s.startOrigin()
	s.initServer(o)
	s.startServer()
	s.sync()
	s.admin("server", "domain", "approve", "default", "agent-core", "1.0")
	var tok api.Token
	s.adminJSON(&tok, "server", "token", "create", "--domain", "default", "--uses", "0")
	s.enrollToken = tok.Secret
	s.adminJSON(&tok, "server", "token", "create", "--domain", "default", "--uses", "0", "--agents")
	s.agentToken = tok.Secret
	return s
}

// nextIP hands out the site's next loopback address.
func (s *site) nextIP() string {
	s.ips++
	if s.ips > 254 {
		s.t.Fatal("site: out of loopback addresses")
	}
	return fmt.Sprintf("127.0.%d.%d", s.net, s.ips)
}

// initOrigin creates the vendor repository and publishes the first
// content. It has 16 hash bins rather than 1024: copies of the
// repository (mirrors, the server, update agents) are then quick to
// make and refresh.
func (s *site) initOrigin() {
	s.originDir = filepath.Join(s.dir, "origin")
	mustCascade(s.t, nil, "origin", "init", s.originDir, "--bins", "16")
	s.originRoot = filepath.Join(s.originDir, "published", "vendor", "metadata", "1.root.json")
	s.publish("--component", "pattern", "1.0")
	s.publish("--program", "agent-core", "1.0")
}

// payload is the content of the one file of an item's version.
func payload(name, version string) string { return name + " " + version + "\n" }

// fileName is the name of the one file of an item.
func fileName(name string) string {
	if name == "pattern" {
		return "lpt.ptn"
	}
	return name + ".bin"
}

// publish publishes version of an item (kind is --component or
// --program) at the origin.
func (s *site) publish(kind, name, version string) {
	s.t.Helper()
	s.publishData(kind, name, version, []byte(payload(name, version)))
}

// publishData publishes version of an item whose one file holds data.
func (s *site) publishData(kind, name, version string, data []byte) {
	s.t.Helper()
	src := filepath.Join(s.dir, "payloads", name, version, fileName(name))
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		s.t.Fatal(err)
	}
	mustCascade(s.t, nil, "origin", "publish", s.originDir, kind, name, "--version", version, src)
}

// startOrigin serves the origin on its own address (the same one again
// after a stop).
func (s *site) startOrigin() {
	if s.originListen == "" {
		s.originListen = testkit.FreeAddr(s.t, s.nextIP())
		s.originURL = "http://" + s.originListen + "/"
	}
	s.origin = serveTree(s.t, "origin", s.originDir, s.originListen)
}

// serveTree serves dir/published with `cascade origin serve` at addr
// (timestamp.json uncached) and waits until it listens.
func serveTree(t *testing.T, name, dir, addr string) *proc {
	t.Helper()
	p := startProc(t, name, nil, "origin", "serve", dir, "--listen", addr, "--timestamp-max-age", "0")
	p.waitOutput(t, regexp.MustCompile(`serving .* at (http://\S+)`))
	return p
}

var fingerprintLine = regexp.MustCompile(`fingerprint: (sha256:[0-9a-f]+)`)

// initServer creates the server's data directory, tunes server.json and
// makes an admin token.
func (s *site) initServer(o siteOptions) {
	t := s.t
	s.serverDir = filepath.Join(s.dir, "server")
	s.serverListen = testkit.FreeAddr(t, s.nextIP())
	s.serverURL = "https://" + s.serverListen + "/"
	s.serverEnv = o.Env
	args := []string{"server", "init", s.serverDir, "--origin", s.originURL, "--vendor-root", s.originRoot,
		"--listen", s.serverListen, "--url", s.serverURL}
	if o.Database != "" {
		args = append(args, "--database", o.Database)
	}
	out := mustCascade(t, s.serverEnv, args...)
	m := fingerprintLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("server init printed no fingerprint: %s", out)
	}
	s.fingerprint = m[1]
	if o.AgentTimeout == 0 {
		o.AgentTimeout = time.Minute
	}
	editJSON(t, filepath.Join(s.serverDir, "server.json"), func(c map[string]any) {
		c["agent_timeout"] = o.AgentTimeout.String()
		c["notify_poll"] = "500ms"
	})
	if o.Database != "" {
		tuneCluster(t, s.serverDir)
	}
	out = mustCascade(t, s.serverEnv, "server", "admin", "create", "--data", s.serverDir, "--name", "e2e")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := lines[len(lines)-1]
	if !strings.HasPrefix(token, "cascade_admin_") {
		t.Fatalf("server admin create: no token in %q", out)
	}
	s.adminEnv = append([]string{"CASCADE_ADMIN_TOKEN=" + token}, s.serverEnv...)
	fp, err := api.ParseFingerprint(s.fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if s.api, err = api.NewClient(api.ClientOptions{URL: s.serverURL, Token: token, Fingerprint: fp, UserAgent: "cascade-e2e"}); err != nil {
		t.Fatal(err)
	}
}

// editJSON rewrites a JSON object file through edit.
func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	edit(doc)
	if b, err = json.MarshalIndent(doc, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startServer runs `cascade server run` and waits until its admin API
// answers.
func (s *site) startServer() {
	s.t.Helper()
	s.server = startProc(s.t, "server", s.serverEnv, "server", "run", "--data", s.serverDir)
	s.server.waitOutput(s.t, regexp.MustCompile(`cascade server at (\S+)`))
	testkit.Eventually(s.t, 30*time.Second, "the server's admin API", func() bool {
		var st api.Status
		return s.tryCall(http.MethodGet, "/api/v1/status", nil, nil, &st) == nil
	})
}

// restartServer stops the server with sig (SIGTERM: a graceful
// restart; SIGKILL: a crash) and starts it again on the same address
// and data.
func (s *site) restartServer(sig syscall.Signal) {
	s.t.Helper()
	s.server.stop(sig)
	s.t.Logf("server stopped (%v): %v", sig, s.server.err)
	s.startServer()
}

// admin runs an admin command against the site's server and returns
// its output.
func (s *site) admin(args ...string) string {
	s.t.Helper()
	return mustCascade(s.t, s.adminEnv, append(args, "--data", s.serverDir)...)
}

// adminJSON runs an admin command with --json and decodes its output.
func (s *site) adminJSON(out any, args ...string) {
	s.t.Helper()
	b := s.admin(append(args, "--json")...)
	if err := json.Unmarshal([]byte(b), out); err != nil {
		s.t.Fatalf("cascade %s: decode %q: %v", strings.Join(args, " "), b, err)
	}
}

// sync has the server mirror the origin now and returns the outcome.
func (s *site) sync() api.SyncResult {
	s.t.Helper()
	var res api.SyncResult
	s.adminJSON(&res, "server", "sync")
	return res
}

// setPolicy replaces the update-source policy with `cascade server
// policy set`.
func (s *site) setPolicy(doc string) {
	s.t.Helper()
	f, err := os.CreateTemp(s.dir, "policy-*.yaml")
	if err != nil {
		s.t.Fatal(err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(doc); err != nil {
		s.t.Fatal(err)
	}
	f.Close()
	s.t.Logf("policy:\n%s", doc)
	s.admin("server", "policy", "set", f.Name())
}

// tryCall makes one admin API call.
func (s *site) tryCall(method, path string, q url.Values, in, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.api.Call(ctx, method, path, q, in, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// call makes one admin API call and fails the test on error.
func (s *site) call(method, path string, q url.Values, in, out any) {
	s.t.Helper()
	if err := s.tryCall(method, path, q, in, out); err != nil {
		s.t.Fatal(err)
	}
}
