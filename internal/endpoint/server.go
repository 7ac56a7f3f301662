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
	"sync/atomic"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/category"
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
	enrollmentFile = "enrollment.json" // the server's URL and fingerprint, the endpoint's id and domain
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
	URL string `json:"url"`
	// KeyFingerprint pins the server's key (api.Fingerprint).
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// Fingerprint is the pin of an enrollment made by an earlier version:
	// the SHA-256 of the server's certificate, which a renewed
	// certificate would not match. It is still accepted, and replaced by
	// the key's fingerprint after the first call to the server that it
	// verified (serverLink.migratePin).
	Fingerprint string `json:"fingerprint,omitempty"`
	EndpointID  string `json:"endpoint_id"`
	Domain      string `json:"domain"`
}

// serverLink is an enrolled endpoint's connection to its management
// server: the `server` source resolves to the server's URL, requests to
// the server pin its certificate, `agent:ID` sources resolve through the
// server's agent directory (cached on disk, refreshed at each run), and
// every run's report is uploaded (kept in an outbox until it is). A nil
// *serverLink is a standalone endpoint: every method is a no-op.
type serverLink struct {
	dir    string
	enr    enrollment
	fp     api.Fingerprint
	client *api.Client
	token  string
	pinned *http.Transport // requests to the server, its key pinned
	log    *slog.Logger
	// seenKey is the key fingerprint of the server a legacy certificate
	// pin last verified (nil: none yet, or not a legacy pin).
	seenKey atomic.Pointer[api.Fingerprint]

	mu     sync.Mutex
	agents map[string]string // agent id -> URL
}

// openServerLink opens the link of an enrolled endpoint, or returns nil
// when the data directory holds no enrollment. It points fo's transport
// at one that pins the server's certificate for requests to the server.
func openServerLink(cfg *Config, fo *fetch.Options, log *slog.Logger) (*serverLink, error) {
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
	var tc *tls.Config
	switch {
	case s.enr.KeyFingerprint != "":
		if s.fp, err = api.ParseFingerprint(s.enr.KeyFingerprint); err != nil {
			return nil, fmt.Errorf("open server link: %w", err)
		}
		tc = api.PinnedTLSConfig(s.fp)
	case s.enr.Fingerprint != "":
		if s.fp, err = api.ParseFingerprint(s.enr.Fingerprint); err != nil {
			return nil, fmt.Errorf("open server link: %w", err)
		}
		tc = api.PinnedTLSConfigFunc(s.fp, func(key api.Fingerprint) { s.seenKey.Store(&key) })
	}
	cred, err := os.ReadFile(filepath.Join(dir, credentialFile))
	if err != nil {
		return nil, fmt.Errorf("open server link: %w", err)
	}
	rt, err := newServerTransport(s.enr.URL, tc, *fo)
	if err != nil {
		return nil, fmt.Errorf("open server link: %w", err)
	}
	fo.Transport = rt
	s.token, s.pinned = strings.TrimSpace(string(cred)), rt.pinned
	s.client, err = api.NewClient(api.ClientOptions{URL: s.enr.URL, Token: s.token,
		HTTPClient: &http.Client{Transport: rt.pinned}, Timeout: serverCallTimeout, UserAgent: fo.UserAgent})
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

// migratePin replaces an enrollment's legacy certificate pin by the
// fingerprint of the key of the server it verified, so that the endpoint
// keeps reaching the server after its certificate is renewed for the
// same key (`cascade server cert renew`). It does nothing before such a
// verification, or for an enrollment that pins the key already.
func (s *serverLink) migratePin() {
	key := s.seenKey.Swap(nil)
	if key == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enr.KeyFingerprint != "" {
		return
	}
	enr := s.enr
	enr.KeyFingerprint, enr.Fingerprint = key.String(), ""
	b, err := json.MarshalIndent(enr, "", "  ")
	if err == nil {
		err = saveServerFile(filepath.Join(s.dir, enrollmentFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		s.log.Warn("replace the server's certificate pin by its key's (kept the certificate pin)", "err", err)
		return
	}
	s.enr = enr
	s.log.Info("the enrollment now pins the server's key instead of its certificate", "key_fingerprint", enr.KeyFingerprint)
}

// serverTransport sends requests for the server's origin (scheme and
// host) through a transport that pins its key, and every other request
// through the fetcher's default transport.
type serverTransport struct {
	scheme, host string
	pinned       *http.Transport
	other        *http.Transport
}

func newServerTransport(serverURL string, pin *tls.Config, fo fetch.Options) (*serverTransport, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server URL %q is not an absolute URL", serverURL)
	}
	pinnedOpts := fo
	if pin != nil {
		pinnedOpts.TLSConfig = pin
	}
	pinnedOpts.Proxy = nil // the server is on the site's network
	return &serverTransport{scheme: strings.ToLower(u.Scheme), host: canonicalHost(u),
		pinned: fetch.DefaultTransport(pinnedOpts), other: fetch.DefaultTransport(fo)}, nil
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
	if strings.EqualFold(r.URL.Scheme, t.scheme) && canonicalHost(r.URL) == t.host {
		return t.pinned.RoundTrip(r)
	}
	return t.other.RoundTrip(r)
}

// CloseIdleConnections closes both transports' idle connections.
func (t *serverTransport) CloseIdleConnections() {
	t.pinned.CloseIdleConnections()
	t.other.CloseIdleConnections()
}

// resolve maps the server and agents known to the directory to URLs.
func (s *serverLink) resolve(src policy.Source) (string, bool) {
	if s == nil {
		return "", false
	}
	switch src.Kind {
	case policy.Server:
		return strings.TrimRight(s.enr.URL, "/") + "/", true
	case policy.Agent:
		s.mu.Lock()
		defer s.mu.Unlock()
		u, ok := s.agents[src.AgentID]
		return u, ok
	}
	return "", false
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
		s.log.Warn("report status to the server (using the cached agent directory)", "server", s.enr.URL, "err", err)
		return
	}
	s.migratePin()
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
		URL:   strings.TrimRight(s.enr.URL, "/") + api.PathEvents,
		Token: s.token,
		// No Timeout: the stream is long-lived; Listen bounds the
		// connection and the silence instead.
		Client:    &http.Client{Transport: s.pinned},
		OnEvent:   onEvent,
		OnConnect: onConnect,
		Logger:    s.log,
	})
}

// saveServerFile replaces name with data atomically and durably.
func saveServerFile(name string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(name, data, perm)
}
