package endpoint

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/testkit"
)

func TestAgentConfig(t *testing.T) {
	base := "data_dir: /d\ntrusted_roots: {vendor: r.json}\n"
	c, err := ParseConfig([]byte(base+"role: agent\nagent_id: ua-1\nserve: {tls_cert: c.pem, tls_key: k.pem, access_log: a.log}\n"), "/etc/cascade")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Serve
	if s.Listen != ":8080" || s.Dir != "/d/agent/served" || s.TLSCert != "/etc/cascade/c.pem" || s.AccessLog != "/etc/cascade/a.log" || !s.fastPath() {
		t.Errorf("defaults: %+v", s)
	}
	for yaml, want := range map[string]bool{"serve: {fast_path: false}\n": false, "serve: {fast_path: true}\n": true} {
		c, err := ParseConfig([]byte(base+"role: agent\nagent_id: ua-1\n"+yaml), "/etc/cascade")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Serve.fastPath(); got != want {
			t.Errorf("%q: fast path %v, want %v", yaml, got, want)
		}
	}
	for _, tt := range []struct{ yaml, want string }{
		{base + "serve: {listen: ':1'}\n", "only an update agent"},
		{base + "role: agent\nagent_id: ua-1\nserve: {listen: nowhere}\n", "serve.listen"},
		{base + "role: agent\nagent_id: ua-1\nserve: {tls_cert: c.pem}\n", "tls_cert and tls_key"},
		{base + "role: agent\nagent_id: ua-1\nserve: {max_downloads: -1}\n", "serve.max_downloads"},
		{base + "role: agent\nagent_id: ua-1\nserve: {bandwidth_limit: -5}\n", "serve.bandwidth_limit"},
		{base + "role: agent\nagent_id: ua-1\nserve: {dir: /d}\n", "holds the agent's state"},
		{base + "role: agent\nagent_id: ua-1\nserve: {bogus: 1}\n", "bogus"},
	} {
		_, err := ParseConfig([]byte(tt.yaml), ".")
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line with %q", tt.yaml, err, tt.want)
		}
	}
}

// cycle is an origin and three update agents whose lists form a cycle:
// A lists B then the origin, B lists C, C lists A; the server is dead, so
// A is the only path to the origin. A client lists C.
type cycle struct {
	t       *testing.T
	origin  *repo.Repo
	hits    atomic.Int64 // target requests the origin answered
	agents  map[string]*Endpoint
	urls    map[string]string
	dataDir map[string]string
}

func newCycle(t *testing.T) *cycle {
	dir := t.TempDir()
	r, err := repo.Init(filepath.Join(dir, "origin"), repo.InitOptions{Options: repo.Options{Now: time.Now},
		Settings: repo.Settings{Kind: repo.Vendor, Bins: 16}})
	if err != nil {
		t.Fatal(err)
	}
	c := &cycle{t: t, origin: r, agents: map[string]*Endpoint{}, urls: map[string]string{}, dataDir: map[string]string{}}
	h, err := static.New(filepath.Dir(r.PublishedDir()), static.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	origin := testkit.Serve(t, testkit.Listen(t, "127.0.1.10"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/targets/") {
			c.hits.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	dead := "http://" + testkit.FreeAddr(t, "127.0.1.11") + "/"
	ips := map[string]string{"ua-a": "127.0.1.21", "ua-b": "127.0.1.22", "ua-c": "127.0.1.23"}
	var dirEntries strings.Builder
	listen := map[string]string{}
	for id, ip := range ips {
		listen[id] = testkit.FreeAddr(t, ip)
		c.urls[id] = "http://" + listen[id] + "/"
		fmt.Fprintf(&dirEntries, "  %s: %s\n", id, c.urls[id])
	}
	policy := fmt.Sprintf(`origin: %s
server: %s
agents: {source: customized}
clients: {source: customized}
fallback_to_server: {components: true}
custom_sources:
  - {addresses: 10.9.0.9, source: "agent:ua-c"}
  - {addresses: 10.9.0.1, source: "agent:ua-b"}
  - {addresses: 10.9.0.1, source: %q}
  - {addresses: 10.9.0.2, source: "agent:ua-c"}
  - {addresses: 10.9.0.3, source: "agent:ua-a"}
`, origin, dead, origin)
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o644)
	addrs := map[string]string{"ua-a": "10.9.0.1", "ua-b": "10.9.0.2", "ua-c": "10.9.0.3"}
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`id: client
data_dir: data-client
policy: policy.yaml
addresses: [10.9.0.9]
trusted_roots: {vendor: origin/published/vendor/metadata/1.root.json}
schedule: {interval: 1h, jitter: 1h}
agents:
%s`, dirEntries.String())), dir)
	if err != nil {
		t.Fatal(err)
	}
	c.agents["client"] = c.start(cfg)
	for id := range ips {
		cfg, err := ParseConfig([]byte(fmt.Sprintf(`id: %s
role: agent
agent_id: %s
data_dir: %s
policy: policy.yaml
addresses: [%s]
trusted_roots: {vendor: origin/published/vendor/metadata/1.root.json}
schedule: {interval: 1h, jitter: 1h}
agents:
%sserve: {listen: %q}
`, id, id, "data-"+id, addrs[id], dirEntries.String(), listen[id])), dir)
		if err != nil {
			t.Fatal(err)
		}
		c.dataDir[id] = cfg.DataDir
		c.agents[id] = c.start(cfg)
	}
	return c
}

// start opens an endpoint and runs its daemon until the test ends.
func (c *cycle) start(cfg *Config) *Endpoint {
	ep, err := Open(cfg, Options{Now: time.Now})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ep.Run(ctx) }()
	c.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			c.t.Error(err)
		}
		ep.Close()
	})
	return ep
}

func (c *cycle) publish(ver string, files ...string) map[string][]byte {
	c.t.Helper()
	out := map[string][]byte{}
	it := repo.Item{Category: "components", Name: "pattern", Version: ver}
	for _, f := range files {
		data := []byte(strings.Repeat(ver+f, 500))
		out[f] = data
		it.Files = append(it.Files, repo.File{Name: f, Data: data})
	}
	if _, err := c.origin.Publish(context.Background(), it); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// update runs an update on the agents, concurrently, and returns their
// components reports.
func (c *cycle) update(trig plan.Trigger, announced map[string]string, ids ...string) map[string]*report.Category {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a deadlock fails the test
	defer cancel()
	var mu sync.Mutex
	out := map[string]*report.Category{}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := c.agents[id].Update(ctx, trig, announced)
			if err != nil {
				c.t.Error(id, err)
				return
			}
			rc := rep.Category(category.Components)
			c.t.Logf("%s %s: %s from %q %s %+v", id, trig, rc.Result, rc.Source, rc.Error, rc.Attempts)
			mu.Lock()
			out[id] = rep.Category(category.Components)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		c.t.Fatal("update runs did not finish: deadlock")
	}
	return out
}

// serving returns the pattern version agent id serves.
func (c *cycle) serving(id string) string {
	cfg := c.agents[id].cfg
	st, err := ReadStatus(cfg)
	if err != nil || st.Agent == nil || st.Agent.Repositories["vendor"] == nil {
		return ""
	}
	return st.Agent.Repositories["vendor"].Items["components"]["pattern"]
}

// TestAgentCycle: three agents in a cycle with one path to the origin.
// Concurrent runs neither loop nor deadlock, new versions travel round
// the cycle, a cycle delays a scheduled run (the agent before holds the
// same version) until a notification makes that agent stale, and a
// pull-through that would go round the cycle is refused.
func TestAgentCycle(t *testing.T) {
	c := newCycle(t)
	c.publish("1.0", "a.ptn")
	c.publish("2.0", "a.ptn")
	all := []string{"ua-a", "ua-b", "ua-c"}
	for round := 0; ; round++ {
		c.update(plan.Scheduled, nil, all...)
		if c.serving("ua-a") == "2.0" && c.serving("ua-b") == "2.0" && c.serving("ua-c") == "2.0" {
			break
		}
		if round == 3 {
			t.Fatalf("after 4 rounds: a %q, b %q, c %q", c.serving("ua-a"), c.serving("ua-b"), c.serving("ua-c"))
		}
	}
	c.publish("3.0", "a.ptn")
	// The cycle delays: A's first source, B, holds what A holds.
	rc := c.update(plan.Scheduled, nil, "ua-a")["ua-a"]
	if rc.Result != report.UpToDate || rc.Source != "agent:ua-b" || c.serving("ua-a") != "2.0" {
		t.Fatalf("scheduled run in the cycle: %+v, serving %s", rc, c.serving("ua-a"))
	}
	// Now A's upstream is B, B's is C and C's is A: a pull-through of a
	// version none of them holds goes round once and is refused.
	hits := c.hits.Load()
	resp, err := http.Get(strings.TrimRight(c.urls["ua-b"], "/") + consistentPath(t, c.origin, "components/pattern/1.0/a.ptn"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || c.hits.Load() != hits {
		t.Fatalf("pull-through round the cycle: %s, origin asked %d times", resp.Status, c.hits.Load()-hits)
	}
	// The server announces 3.0: B is stale, so A goes to the origin; then
	// C and B follow through the cycle.
	rc = c.update(plan.NotifyComponents, map[string]string{"pattern": "3.0"}, "ua-a")["ua-a"]
	if rc.Result != report.Updated || rc.Source != "origin" || c.serving("ua-a") != "3.0" {
		t.Fatalf("notified run: %+v", rc)
	}
	c.update(plan.NotifyComponents, map[string]string{"pattern": "3.0"}, "ua-c")
	c.update(plan.NotifyComponents, map[string]string{"pattern": "3.0"}, "ua-b")
	for _, id := range all {
		if v := c.serving(id); v != "3.0" {
			t.Errorf("%s serves %s", id, v)
		}
	}
	// A client of C updates from it; C's status counts it.
	rc = c.update(plan.Scheduled, nil, "client")["client"]
	if rc.Result != report.Updated || rc.Source != "agent:ua-c" || rc.After["pattern"] != "3.0" {
		t.Fatalf("client: %+v", rc)
	}
	st, err := ReadStatus(c.agents["ua-c"].cfg)
	if err != nil || st.Agent == nil || st.Agent.Requests == 0 || st.Agent.Listen == "" {
		t.Fatalf("agent status %+v %v", st, err)
	}
	if st, err := ReadStatus(c.agents["client"].cfg); err != nil || st.Agent != nil {
		t.Fatalf("client status %+v %v", st, err)
	}
	// A's upstream is the origin again: the old version is pulled through
	// B, C and A.
	resp, err = http.Get(strings.TrimRight(c.urls["ua-b"], "/") + consistentPath(t, c.origin, "components/pattern/1.0/a.ptn"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pull-through along the chain: %s", resp.Status)
	}
}

// consistentPath is the URL path of a target in the origin's tree.
func consistentPath(t *testing.T, r *repo.Repo, target string) string {
	t.Helper()
	dir := filepath.Join(r.PublishedDir(), "targets", filepath.FromSlash(filepath.Dir(target)))
	matches, _ := filepath.Glob(filepath.Join(dir, "*."+filepath.Base(target)))
	if len(matches) != 1 {
		t.Fatalf("%s: %v", target, matches)
	}
	rel, _ := filepath.Rel(filepath.Dir(r.PublishedDir()), matches[0])
	return "/" + filepath.ToSlash(rel)
}
