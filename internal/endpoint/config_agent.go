package endpoint

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/cascade-update/cascade/internal/plan"
)

// AgentConfig is how an update agent (role agent) serves what it holds:
// the `serve:` section of the configuration file (docs/agents.md). It is
// an error for a client.
type AgentConfig struct {
	// Listen is the address the agent serves on (default ":8080"). The
	// agent directory (the server's, or a standalone endpoint's agents:)
	// must list the URL clients reach it at.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are the PEM certificate (chain) and private key
	// of HTTPS serving; both or neither. Without them the agent serves
	// plain HTTP, which is safe for content (clients verify every byte
	// against signed metadata) but lets an observer on the network see
	// what is being downloaded.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// Dir is the served tree (default DATA_DIR/agent/served). Security
	// caveat: everything under it may be served; give the agent a
	// directory of its own.
	Dir string `yaml:"dir"`
	// MaxDownloads bounds the requests served at once (default 256);
	// more get 503 with Retry-After, and clients try again shortly or
	// move to their next source.
	MaxDownloads int `yaml:"max_downloads"`
	// RetryAfter is the wait those 503 answers ask for (default 2s).
	RetryAfter time.Duration `yaml:"retry_after"`
	// BandwidthLimit caps the agent's total upload in bytes per second
	// (default 0: unlimited, served with sendfile).
	BandwidthLimit int64 `yaml:"bandwidth_limit"`
	// TimestampMaxAge is the Cache-Control max-age of timestamp.json
	// (default 10s). Caveat: a cache in front of the agent may hide a new
	// version from clients for that long.
	TimestampMaxAge time.Duration `yaml:"timestamp_max_age"`
	// AccessLog is where one record per request goes: "" (default: no
	// access log), "stderr", or a file that JSON records are appended to.
	AccessLog string `yaml:"access_log"`
	// FastPath, true by default, answers revalidations and requests for
	// missing metadata over plain HTTP without net/http
	// (internal/fastpath, docs/agents.md "Performance"); false serves
	// everything with net/http. HTTPS is always served by net/http.
	FastPath *bool `yaml:"fast_path"`
}

// fastPath reports whether the fast path is on (FastPath, default true).
func (s *AgentConfig) fastPath() bool { return s.FastPath == nil || *s.FastPath }

// Layout of an agent's part of the data directory.
const (
	agentDir      = "agent"
	agentStateDir = "state" // DATA_DIR/agent/state: trusted metadata of the served tree, status.json
	agentServeDir = "served"
)

// agentState is the agent's state directory.
func (c *Config) agentState() string { return filepath.Join(c.DataDir, agentDir, agentStateDir) }

// validateAgent checks the serve: section and fills its defaults. It runs
// after DataDir is resolved.
func (c *Config) validateAgent() error {
	s := &c.Serve
	if c.Role != plan.RoleAgent {
		if *s != (AgentConfig{}) {
			return errors.New("serve: only an update agent (role: agent) serves")
		}
		return nil
	}
	if s.Listen == "" {
		s.Listen = ":8080"
	}
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		return fmt.Errorf("serve.listen: %q is not host:port", s.Listen)
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		return errors.New("serve: tls_cert and tls_key go together")
	}
	s.TLSCert, s.TLSKey = c.path(s.TLSCert), c.path(s.TLSKey)
	if s.Dir == "" {
		s.Dir = filepath.Join(c.DataDir, agentDir, agentServeDir)
	}
	s.Dir = c.path(s.Dir)
	if s.AccessLog != "" && s.AccessLog != "stderr" {
		s.AccessLog = c.path(s.AccessLog)
	}
	switch {
	case s.MaxDownloads < 0:
		return fmt.Errorf("serve.max_downloads: %d is negative", s.MaxDownloads)
	case s.BandwidthLimit < 0:
		return fmt.Errorf("serve.bandwidth_limit: %d is negative", s.BandwidthLimit)
	case s.RetryAfter < 0 || s.TimestampMaxAge < 0:
		return errors.New("serve: retry_after and timestamp_max_age cannot be negative")
	}
	if rel, err := filepath.Rel(s.Dir, c.agentState()); err == nil && filepath.IsLocal(rel) {
		return fmt.Errorf("serve.dir: %s holds the agent's state; choose another directory", s.Dir)
	}
	return nil
}
