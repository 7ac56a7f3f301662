//go:build e2e

package e2e

import (
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// member is an enrolled endpoint of a site whose daemon (`cascade
// endpoint run`) runs as its own process.
type member struct {
	s       *site
	name    string // its host name
	id      string // its endpoint id at the server
	agentID string // set for an update agent
	listen  string // an agent's serving address
	address string // the address it reports: it selects its entries of the policy
	config  string
	dataDir string
	proc    *proc
}

// memberOptions describe an endpoint to enroll.
type memberOptions struct {
	// Address is the one address the endpoint reports (and the policy's
	// custom sources match); it is not where it connects from.
	Address string
	// AgentID makes it an update agent serving on its own loopback
	// address.
	AgentID string
	// Config adds to, or replaces, sections of the configuration written
	// by enrollment (after the suite's defaults: a quiet schedule, short
	// failed-source cache, generous timeouts).
	Config map[string]any
	// Server and Fingerprint enroll it at another server than the
	// site's (a process of several on one database).
	Server, Fingerprint string
}

var enrolledLine = regexp.MustCompile(`enrolled as (ep_\S+) in domain`)

// enroll enrolls an endpoint with `cascade endpoint enroll`, completes
// its configuration and starts its daemon.
func (s *site) enroll(name string, o memberOptions) *member {
	t := s.t
	t.Helper()
	m := &member{s: s, name: name, agentID: o.AgentID, address: o.Address}
	m.config = filepath.Join(s.dir, name, "endpoint.yaml")
	token := s.enrollToken
	if o.AgentID != "" {
		token = s.agentToken
	}
	server, fp := s.serverURL, s.fingerprint
	if o.Server != "" {
		server, fp = o.Server, o.Fingerprint
	}
	args := []string{"endpoint", "enroll", "--server", server, "--fingerprint", fp, "--vendor-root", s.originRoot,
		"--config", m.config, "--hostname", name, "--address", o.Address}
	if o.AgentID != "" {
		m.listen = testkit.FreeAddr(t, s.nextIP())
		args = append(args, "--role", "agent", "--agent-id", o.AgentID, "--agent-url", "http://"+m.listen+"/")
	}
	out := mustCascade(t, []string{"CASCADE_ENROLL_TOKEN=" + token}, args...)
	match := enrolledLine.FindStringSubmatch(out)
	if match == nil {
		t.Fatalf("enroll %s: no endpoint id in %q", name, out)
	}
	m.id = match[1]
	m.configure(o.Config)
	m.start()
	return m
}

// configure adds the suite's settings to the enrolled configuration: no
// scheduled run during the test (the first one would come at a random
// time within the jitter: a day), timeouts that a loaded machine does
// not trip (no assertion depends on a timeout: dead sources refuse
// connections), a failed source forgotten after 10ms rather than 30s (so
// that a source brought back is used by the next run), and an agent's
// serving address.
func (m *member) configure(extra map[string]any) {
	t := m.s.t
	b, err := os.ReadFile(m.config)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", m.config, err)
	}
	m.dataDir = doc["data_dir"].(string)
	doc["schedule"] = map[string]any{"interval": "24h", "jitter": "24h"}
	doc["fetch"] = map[string]any{"connect_timeout": "2s", "header_timeout": "5s"}
	doc["failover"] = map[string]any{"failed_ttl": "10ms"}
	if m.agentID != "" {
		// Enrollment wrote serve.listen from --agent-url.
		serve, _ := doc["serve"].(map[string]any)
		if serve == nil || serve["listen"] != m.listen {
			t.Fatalf("%s: enrollment wrote serve: %v, want listen: %s", m.config, doc["serve"], m.listen)
		}
		serve["timestamp_max_age"] = "1s"
	}
	for k, v := range extra {
		if sub, ok := v.(map[string]any); ok {
			if cur, ok := doc[k].(map[string]any); ok {
				maps.Copy(cur, sub)
				continue
			}
		}
		doc[k] = v
	}
	if b, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.config, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs the endpoint's daemon and waits until it takes requests
// (and, for an agent, serves).
func (m *member) start() {
	t := m.s.t
	t.Helper()
	m.proc = startProc(t, m.name, nil, "endpoint", "run", "--config", m.config)
	sock := filepath.Join(m.dataDir, "control.sock")
	testkit.Eventually(t, 30*time.Second, m.name+"'s control socket", func() bool {
		if !m.proc.running() {
			t.Fatalf("%s exited: %v", m.name, m.proc.err)
		}
		_, err := os.Stat(sock)
		return err == nil
	})
	if m.listen != "" {
		testkit.Eventually(t, 30*time.Second, m.name+" serving", func() bool {
			c, err := net.DialTimeout("tcp", m.listen, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
}

// updateNow asks the daemon for a manual run (`cascade endpoint update
// --now --json`) and returns the run's report, failed or not.
func (m *member) updateNow() *report.Report {
	t := m.s.t
	t.Helper()
	out, err := cascade(t, nil, "endpoint", "update", "--now", "--config", m.config, "--json")
	if err != nil && exitCode(err) != 1 { // 1: the run failed, and its report was printed
		t.Fatal(err)
	}
	var rep report.Report
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("%s: update --now: decode the report: %v (%v)", m.name, jerr, err)
	}
	if (err != nil) != (rep.Result == report.Failed) {
		t.Fatalf("%s: update --now exited with %v for a run that ended %s", m.name, err, rep.Result)
	}
	return &rep
}

// localReport reads the report of run id that the endpoint kept in its
// data directory (with the plan's steps, which the server's copy leaves
// out).
func (m *member) localReport(id string) *report.Report {
	t := m.s.t
	t.Helper()
	names, err := filepath.Glob(filepath.Join(m.dataDir, "reports", "*-"+id+".json"))
	if err != nil || len(names) != 1 {
		t.Fatalf("%s: report %s: %v %v", m.name, id, names, err)
	}
	b, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s: %v", names[0], err)
	}
	return &rep
}

// localReportIDs are the ids of the runs whose reports the endpoint
// keeps in its data directory.
func (m *member) localReportIDs() []string {
	names, err := filepath.Glob(filepath.Join(m.dataDir, "reports", "*.json"))
	if err != nil {
		m.s.t.Fatal(err)
	}
	ids := make([]string, len(names))
	for i, n := range names {
		base := strings.TrimSuffix(filepath.Base(n), ".json")
		ids[i] = base[strings.LastIndex(base, "-")+1:]
	}
	return ids
}

// installed returns the content of the file of item name installed in
// category cat ("" if there is none).
func (m *member) installed(cat category.Category, name string) string {
	b, err := os.ReadFile(filepath.Join(m.dataDir, "installed", string(cat), "current", name, fileName(name)))
	if err != nil {
		return ""
	}
	return string(b)
}

// wantInstalled checks that the endpoint has version of item name
// installed in category cat, byte for byte as the origin published it.
func (m *member) wantInstalled(cat category.Category, name, version string) {
	m.s.t.Helper()
	if got, want := m.installed(cat, name), payload(name, version); got != want {
		m.s.t.Errorf("%s: installed %s/%s is %q, want %q", m.name, cat, name, got, want)
	}
}

// waitConnected waits until every member holds its notification stream
// to the server.
func (s *site) waitConnected(ms ...*member) {
	s.t.Helper()
	for _, m := range ms {
		testkit.Eventually(s.t, 30*time.Second, m.name+"'s event stream", func() bool {
			var ep api.Endpoint
			s.call(http.MethodGet, "/api/v1/endpoints/"+m.id, nil, nil, &ep)
			return ep.Connected
		})
	}
}

// installPolicy sets a policy and has each member, in turn, install it
// (a run plans with the policy installed before it, then installs the
// new one from domain settings), checking that it did. Agents go first,
// so that their clients find the new policy on them.
func installPolicy(s *site, doc string, ms ...*member) {
	s.t.Helper()
	s.setPolicy(doc)
	for _, m := range ms {
		rep := s.serverReport(m, m.updateNow())
		if rc := rep.Category(category.DomainSettings); rc == nil || rc.Result != report.Updated || rc.After["policy"] == rc.Before["policy"] {
			s.t.Fatalf("%s did not install the new policy: %+v", m.name, rc)
		}
	}
}
