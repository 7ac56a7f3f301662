// Package endpoint is the update daemon of one endpoint (a client or an
// update agent): its configuration, the schedule with random jitter, the
// local control socket that `cascade endpoint update --now` talks to, and
// the wiring of plan, update run, trust and install stores.
package endpoint

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/strictyaml"
)

// Config is an endpoint's configuration file. Decoding is strict: unknown
// fields are errors. Relative paths are relative to the file's directory.
type Config struct {
	// ID names the endpoint in reports and logs (default: the host name).
	ID string `yaml:"id"`
	// Role is client (default) or agent.
	Role plan.Role `yaml:"role"`
	// AgentID is the update agent's id, as in `agent:ID` entries (role
	// agent; an agent never lists itself).
	AgentID string `yaml:"agent_id"`
	// Domain selects the domain settings document the endpoint installs.
	Domain string `yaml:"domain"`
	// Addresses select the endpoint's entries of the Customized Update
	// Source List. Default: the addresses of the machine's interfaces.
	Addresses []string `yaml:"addresses"`
	// DataDir holds trusted metadata, installed content, cached downloads
	// and reports. Required.
	DataDir string `yaml:"data_dir"`
	// Policy is the update-source policy file of a standalone endpoint.
	// An installed domain_settings policy, when present, takes precedence.
	Policy string `yaml:"policy"`
	// TrustedRoots are the initial root.json files of the repositories
	// (vendor required; site optional), used the first time the endpoint
	// starts. Security caveat: they are the endpoint's trust anchors;
	// obtain them out of band.
	TrustedRoots struct {
		Vendor string `yaml:"vendor"`
		Site   string `yaml:"site"`
	} `yaml:"trusted_roots"`
	// Server lists the management server's URLs (https://), in the order
	// they are used: one URL or a list, for a site with several
	// management servers (ServerURLs). An enrolled endpoint uses them for
	// the `server` source and for its calls to the server, failing over in
	// order; its default is the URL it enrolled with. A standalone
	// endpoint resolves the `server` source to them instead of the
	// policy's server.
	Server ServerURLs `yaml:"server"`
	// Agents is the directory of a standalone endpoint: agent id -> URL.
	Agents map[string]string `yaml:"agents"`
	// Serve is how an update agent serves (config_agent.go).
	Serve AgentConfig `yaml:"serve"`
	// Schedule of update runs.
	Schedule Schedule `yaml:"schedule"`
	// Hooks are commands run after a category is installed (no shell:
	// use ["/bin/sh", "-c", "..."] for one).
	Hooks map[category.Category][]string `yaml:"hooks"`
	// HookTimeout bounds a hook (default 5m).
	HookTimeout time.Duration `yaml:"hook_timeout"`
	// Fetch bounds every request to a source.
	Fetch FetchConfig `yaml:"fetch"`
	// Failover tunes the probe-ahead walk.
	Failover struct {
		MaxInFlight int           `yaml:"max_in_flight"` // default 1024
		Hedge       time.Duration `yaml:"hedge"`         // default 50ms
		// FailedTTL is how long a source that failed at connection level is
		// not contacted again, across runs (default 30s).
		FailedTTL time.Duration `yaml:"failed_ttl"`
	} `yaml:"failover"`
	// ReportsKeep is the number of run reports kept locally (default 50).
	ReportsKeep int `yaml:"reports_keep"`

	dir   string       // the config file's directory
	addrs []netip.Addr // parsed Addresses
}

// Schedule is when scheduled runs happen.
type Schedule struct {
	// Interval between scheduled runs (default 1h; minimum 10s).
	Interval time.Duration `yaml:"interval"`
	// Jitter is the maximum random delay added to each run, so that a
	// fleet does not update in lockstep (default Interval/6).
	Jitter time.Duration `yaml:"jitter"`
}

// FetchConfig bounds requests. Defaults favour fast failover on LANs
// and WANs alike; raise header_timeout on links with very long round
// trips.
type FetchConfig struct {
	ConnectTimeout time.Duration `yaml:"connect_timeout"` // default 1s
	HeaderTimeout  time.Duration `yaml:"header_timeout"`  // default 1s: a source slower to answer is "too slow"
	MinRate        int64         `yaml:"min_rate"`        // bytes/s, default 4096
	RateWindow     time.Duration `yaml:"rate_window"`     // default 20s
}

// LoadConfig reads and validates an endpoint configuration file.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load endpoint config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("load endpoint config: %w", err)
	}
	c, err := ParseConfig(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("endpoint config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes and validates a configuration; dir resolves
// relative paths. An invalid configuration is a *strictyaml.Error listing
// every problem, one line each.
func ParseConfig(data []byte, dir string) (*Config, error) {
	var c Config
	if err := strictyaml.Decode(data, &c); err != nil {
		if errors.Is(err, strictyaml.ErrEmpty) {
			return nil, errors.New("configuration is empty")
		}
		return nil, err
	}
	c.dir = dir
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks c and fills its defaults; every problem found is one
// line of the *strictyaml.Error it returns.
func (c *Config) validate() error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if c.ID == "" {
		h, err := os.Hostname()
		if err != nil {
			bad("id: not set and no host name: %v", err)
		}
		c.ID = h
	}
	switch c.Role {
	case "":
		c.Role = plan.RoleClient
	case plan.RoleClient, plan.RoleAgent:
	default:
		bad("role: %q is neither client nor agent", c.Role)
	}
	if c.AgentID != "" && !policy.ValidAgentID(c.AgentID) {
		bad("agent_id: %q is not a valid agent id", c.AgentID)
	}
	if c.Role == plan.RoleAgent && c.AgentID == "" {
		bad("agent_id: required for role agent")
	}
	if c.DataDir == "" {
		bad("data_dir: required")
	}
	c.DataDir = c.path(c.DataDir)
	if c.TrustedRoots.Vendor == "" {
		bad("trusted_roots.vendor: required")
	}
	for _, s := range c.Addresses {
		a, err := netip.ParseAddr(s)
		if err != nil {
			bad("addresses: %q is not an IP address", s)
			continue
		}
		c.addrs = append(c.addrs, a)
	}
	c.validateServer(bad)
	for _, id := range slices.Sorted(maps.Keys(c.Agents)) {
		if !policy.ValidAgentID(id) {
			bad("agents: %q is not a valid agent id", id)
		}
		if u := c.Agents[id]; !policy.SameURL(u, u) {
			bad("agents.%s: %q is not an absolute http(s) URL", id, u)
		}
	}
	for _, cat := range slices.Sorted(maps.Keys(c.Hooks)) {
		if _, err := category.Parse(string(cat)); err != nil {
			bad("hooks: %v", err)
		}
	}
	c.defaults()
	if c.DataDir != "" && (c.Role == plan.RoleClient || c.Role == plan.RoleAgent) {
		if err := c.validateAgent(); err != nil {
			bad("%v", err)
		}
	}
	if c.Schedule.Interval < 10*time.Second {
		bad("schedule.interval: %s is shorter than 10s", c.Schedule.Interval)
	}
	if len(problems) > 0 {
		return &strictyaml.Error{Problems: problems}
	}
	return nil
}

// maxServers bounds the server: list.
const maxServers = 16

// validateServer checks the server URLs: https, at most maxServers, each
// once; it normalises them to end in "/".
func (c *Config) validateServer(bad func(string, ...any)) {
	if len(c.Server) > maxServers {
		bad("server: %d URLs, at most %d", len(c.Server), maxServers)
	}
	var ok ServerURLs
	for _, u := range c.Server {
		if err := api.CheckServerURL(u); err != nil {
			bad("server: %v", err)
			continue
		}
		if slices.ContainsFunc(ok, func(v string) bool { return policy.SameURL(u, v) }) {
			bad("server: %s is listed twice", u)
			continue
		}
		ok = append(ok, strings.TrimRight(u, "/")+"/")
	}
	c.Server = ok
}

// ServerURLs are the URLs of the management servers, in order. In YAML
// it is one URL (`server: https://cascade.corp.example:8443/`) or a list
// of them (`server: [https://a.corp.example:8443/,
// https://b.corp.example:8443/]`).
type ServerURLs []string

// UnmarshalYAML reads a URL or a list of URLs.
func (s *ServerURLs) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*s = nil
			return nil
		}
		*s = ServerURLs{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(ServerURLs, 0, len(n.Content))
		for _, it := range n.Content {
			if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a server URL, got %s", it.Line, nodeKind(it))}}
			}
			out = append(out, it.Value)
		}
		*s = out
		return nil
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a server URL or a list of them, got %s", n.Line, nodeKind(n))}}
}

// nodeKind names what a YAML node holds, as errors say it.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "nothing"
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Schedule.Interval, time.Hour)
	def(&c.Schedule.Jitter, c.Schedule.Interval/6)
	def(&c.HookTimeout, 5*time.Minute)
	def(&c.Fetch.ConnectTimeout, time.Second)
	def(&c.Fetch.HeaderTimeout, time.Second)
	def(&c.Fetch.RateWindow, 20*time.Second)
	def(&c.Failover.FailedTTL, 30*time.Second)
	if c.Fetch.MinRate == 0 {
		c.Fetch.MinRate = 4096
	}
	if c.ReportsKeep <= 0 {
		c.ReportsKeep = 50
	}
}

// path resolves a configured path against the file's directory.
func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}
