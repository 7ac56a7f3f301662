package endpoint

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failover"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/notify"
	"github.com/cascade-update/cascade/internal/notify/listen"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
)

// Files of an enrolled endpoint, under DATA_DIR/server/ (written by
// Enroll, 0600 where secret).
const (
	serverDir      = "server"
	enrollmentFile = "enrollment.json" // the server's URL, the pinned server keys, the endpoint's id and domain
	credentialFile = "credential"      // the endpoint credential (0600)
	agentsFile     = "agents.json"     // the cached agent directory
	policyFile     = "policy.yaml"     // the policy received at enrollment, until a signed one is installed
	outboxDir      = "outbox"          // reports not yet uploaded
)

// serverCallTimeout bounds each call to the server made around an update
// run, so that an unreachable server delays a run only briefly.
const serverCallTimeout = 15 * time.Second

// enrollment is DATA_DIR/server/enrollment.json.
type enrollment struct {
	// URL is the server enrolled with; the configuration's server: list,
	// when set, replaces it.
	URL string `json:"url"`
	// KeyFingerprints pin the keys of the site's management servers
	// (api.Fingerprint, pinSet): a server is accepted when its key is
	// one of them.
	KeyFingerprints []string `json:"key_fingerprints,omitempty"`
	// KeyFingerprint is the first of KeyFingerprints, the one pin that
	// earlier versions read (the server's key).
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// Fingerprint is the pin of an enrollment made by an earlier version:
	// the SHA-256 of the server's certificate, which a renewed
	// certificate would not match. It is still accepted, and replaced by
	// the key's fingerprint after the first call to the server that it
	// verified (pinSet.migrate).
	Fingerprint string `json:"fingerprint,omitempty"`
	EndpointID  string `json:"endpoint_id"`
	Domain      string `json:"domain"`
}

// serverLink is an enrolled endpoint's connection to its management
// servers: the `server` source resolves to the servers' URLs, requests to
// the servers pin their keys, calls to the server go to the first server
// that answers (serverFailover), `agent:ID` sources resolve through the
// server's agent directory (cached on disk, refreshed at each run), and
// every run's report is uploaded (kept in an outbox until it is). A nil
// *serverLink is a standalone endpoint: every method is a no-op.
type serverLink struct {
	dir    string
	urls   []string // the servers' base URLs, in order, each ending in "/"
	client *api.Client
	token  string
	api    *http.Client // calls to the server, failing over (no Timeout: the event stream is long-lived)
	pins   *pinSet      // nil: the servers' certificates are verified against the system roots
	log    *slog.Logger

	mu     sync.Mutex
	enr    enrollment
	agents map[string]string // agent id -> URL
}

// openServerLink opens the link of an enrolled endpoint, or returns nil
// when the data directory holds no enrollment. It points fo's transport
// at one that pins the servers' keys for requests to the servers; health
// is the update runs', which the calls to the server share.
func openServerLink(cfg *Config, fo *fetch.Options, health *failover.Health, log *slog.Logger) (*serverLink, error) {
	dir := filepath.Join(cfg.DataDir, serverDir)
	b, err := os.ReadFile(filepath.Join(dir, enrollmentFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open server link: %w", err)
	}
	s := &serverLink{dir: dir, log: log, agents: map[string]string{}}
	if err := json.Unmarshal(b, &s.enr); err != nil {
		return nil, fmt.Errorf("open server link: %s: %w", enrollmentFile, err)
	}
	if err := api.CheckServerURL(s.enr.URL); err != nil {
		return nil, fmt.Errorf("open server link: %s: %w (enroll again over https)", enrollmentFile, err)
	}
	s.urls = cfg.Server
	if len(s.urls) == 0 {
		s.urls = []string{strings.TrimRight(s.enr.URL, "/") + "/"}
	}
	if s.pins, err = loadPins(s.enr); err != nil {
		return nil, fmt.Errorf("open server link: %w", err)
	}
	var tc *tls.Config
	if s.pins != nil {
		tc = api.PinnedTLSConfigSet(s.pins.get, s.pins.seen)
	}
	cred, err := os.ReadFile(filepath.Join(dir, credentialFile))
	if err != nil {
		return nil, fmt.Errorf("open server link: %w", err)
	}
	rt, err := newServerTransport(s.urls, tc, *fo)
	if err != nil {
		return nil, fmt.Errorf("open server link: %w", err)
	}
	fo.Transport = rt
	calls, err := newServerFailover(s.urls, health, rt.pinned)
	if err != nil {
		return nil, fmt.Errorf("open server link: %w", err)
	}
	s.token, s.api = strings.TrimSpace(string(cred)), &http.Client{Transport: calls}
	s.client, err = api.NewClient(api.ClientOptions{URL: s.urls[0], Token: s.token,
		HTTPClient: s.api, Timeout: serverCallTimeout, UserAgent: fo.UserAgent})
	if err != nil {
		return nil, fmt.Errorf("open server link: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, agentsFile)); err == nil {
		var list []api.Agent
		if json.Unmarshal(b, &list) == nil {
			s.setAgents(list, false)
		}
	}
	return s, nil
}

// updatePins records what a pinned server's status answer teaches: the
// key that replaces a legacy certificate pin (so that the endpoint keeps
// reaching the server after its certificate is renewed for the same key,
// `cascade server cert renew`), and the keys of the site's servers the
// set lacks (a server that joined the site).
func (s *serverLink) updatePins(serverKeys []string) {
	if s.pins == nil {
		return
	}
	migrated := s.pins.migrate()
	added := s.pins.add(serverKeys)
	if !migrated && len(added) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	enr := s.enr
	s.pins.record(&enr)
	b, err := json.MarshalIndent(enr, "", "  ")
	if err == nil {
		err = saveServerFile(filepath.Join(s.dir, enrollmentFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		s.log.Warn("record the servers' keys in the enrollment (kept in memory)", "err", err)
		return
	}
	s.enr = enr
	if migrated {
		s.log.Info("the enrollment now pins the server's key instead of its certificate", "key_fingerprint", enr.KeyFingerprint)
	}
	if len(added) > 0 {
		s.log.Info("the enrollment now pins the keys of more of the site's servers", "added", added)
	}
}

// serverTransport sends requests for the servers' origins (scheme and
// host) through a transport that pins their keys, and every other
// request through the fetcher's default transport.
type serverTransport struct {
	origins map[string]bool // scheme "://" canonical host
	pinned  *http.Transport
	other   *http.Transport
}

func newServerTransport(serverURLs []string, pin *tls.Config, fo fetch.Options) (*serverTransport, error) {
	t := &serverTransport{origins: map[string]bool{}}
	for _, s := range serverURLs {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("server URL %q is not an absolute URL", s)
		}
		t.origins[strings.ToLower(u.Scheme)+"://"+canonicalHost(u)] = true
	}
	pinnedOpts := fo
	if pin != nil {
		pinnedOpts.TLSConfig = pin
	}
	pinnedOpts.Proxy = nil // the servers are on the site's network
	// A server that accepts connections and never answers is left
	// within the header timeout, its handshake included, so that the
	// next server is used quickly.
	pinnedOpts.TLSHandshakeTimeout = fo.ResponseHeaderTimeout
	t.pinned, t.other = fetch.DefaultTransport(pinnedOpts), fetch.DefaultTransport(fo)
	return t, nil
}

// canonicalHost is u's host in lower case with the default port dropped.
func canonicalHost(u *url.URL) string {
	h, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if port == "" {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return net.JoinHostPort(h, port)
}

func (t *serverTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.origins[strings.ToLower(r.URL.Scheme)+"://"+canonicalHost(r.URL)] {
		return t.pinned.RoundTrip(r)
	}
	return t.other.RoundTrip(r)
}

// CloseIdleConnections closes both transports' idle connections.
func (t *serverTransport) CloseIdleConnections() {
	t.pinned.CloseIdleConnections()
	t.other.CloseIdleConnections()
}

// resolve maps the server (its URLs, in order) and agents known to the
// directory to URLs.
func (s *serverLink) resolve(src policy.Source) ([]string, bool) {
	if s == nil {
		return nil, false
	}
	switch src.Kind {
	case policy.Server:
		return s.urls, true
	case policy.Agent:
		s.mu.Lock()
		defer s.mu.Unlock()
		u, ok := s.agents[src.AgentID]
		return []string{u}, ok
	}
	return nil, false
}

// setAgents replaces the cached directory, persisting it when save.
func (s *serverLink) setAgents(list []api.Agent, save bool) {
	m := make(map[string]string, len(list))
	for _, a := range list {
		if policy.ValidAgentID(a.AgentID) && policy.SameURL(a.URL, a.URL) {
			m[a.AgentID] = a.URL
		}
	}
	s.mu.Lock()
	s.agents = m
	s.mu.Unlock()
	if !save {
		return
	}
	if b, err := json.Marshal(list); err == nil {
		if err := saveServerFile(filepath.Join(s.dir, agentsFile), b, 0o644); err != nil {
			s.log.Warn("cache the agent directory", "err", err)
		}
	}
}

// refresh reports the endpoint's status and refreshes the agent
// directory. A server that cannot be reached leaves the cached directory
// in use.
func (s *serverLink) refresh(ctx context.Context, e *Endpoint) {
	if s == nil {
		return
	}
	req := api.StatusRequest{Hostname: e.cfg.ID, Installed: map[string]map[string]string{}}
	if addrs, err := e.Addresses(); err == nil {
		req.Addresses = make([]string, len(addrs))
		for i, a := range addrs {
			req.Addresses[i] = a.String()
		}
	}
	for _, c := range category.All {
		if v, err := e.inst.Current(c); err == nil {
			items := map[string]string{}
			for _, it := range v.Items {
				items[it.Name] = it.Version
			}
			req.Installed[string(c)] = items
		}
	}
	var resp api.StatusResponse
	if err := s.client.Call(ctx, http.MethodPost, api.PathStatus, nil, req, &resp); err != nil {
		s.log.Warn("report status to the server (using the cached agent directory)", "server", s.urls[0], "err", err)
		return
	}
	s.updatePins(resp.ServerKeys)
	s.setAgents(resp.Agents, true)
	if resp.Role != string(e.cfg.Role) || resp.AgentID != e.cfg.AgentID {
		s.log.Warn("the server designates this endpoint differently from its configuration; update role and agent_id in the configuration",
			"server_role", resp.Role, "server_agent_id", resp.AgentID, "config_role", e.cfg.Role, "config_agent_id", e.cfg.AgentID)
	}
}

// listen holds the endpoint's event stream to the server until ctx is
// cancelled, calling onConnect each time a stream opens and onEvent for
// each notification (internal/notify/listen: reconnection with backoff and
// jitter, resumption, size caps).
func (s *serverLink) listen(ctx context.Context, onConnect func(), onEvent func(notify.Event)) error {
	return listen.Run(ctx, listen.Options{
		URL:   s.client.Endpoint(api.PathEvents, nil),
		Token: s.token,
		// No Timeout: the stream is long-lived; Listen bounds the
		// connection and the silence instead. A stream that ends
		// reconnects to the first server that answers.
		Client:    s.api,
		OnEvent:   onEvent,
		OnConnect: onConnect,
		Logger:    s.log,
	})
}

// saveServerFile replaces name with data atomically and durably.
func saveServerFile(name string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(name, data, perm)
}
