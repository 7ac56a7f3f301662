package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/trust"
)

// member is one endpoint of the demo site.
type member struct {
	name, role, agentID, addr string
	agentURL                  string
	config                    string
	ep                        *endpoint.Endpoint
	cancel                    context.CancelFunc
	done                      chan error
}

func (m *member) close() {
	if m.cancel != nil {
		m.cancel()
		<-m.done
		m.cancel = nil
	}
	if m.ep != nil {
		m.ep.Close()
		m.ep = nil
	}
}

// agents of the demo: id, network, address.
var demoAgents = []struct{ id, net, addr string }{
	{"ua-berlin-1", "127.0.10.0/24", "127.0.10.1"},
	{"ua-paris-1", "127.0.20.0/24", "127.0.20.1"},
}

// configure sets the update-source policy: each office's clients go to
// their agent, then to the server; agents update from the server.
func (s *site) configure(ctx context.Context) error {
	var b strings.Builder
	fmt.Fprintf(&b, "origin: %s\nserver: %s\nclients: {source: customized}\nagents: {source: standard}\n", s.originURL, s.serverURL)
	b.WriteString("fallback_to_server: {components: true, domain_settings: true, programs: true}\ncustom_sources:\n")
	for _, a := range demoAgents {
		fmt.Fprintf(&b, "  - {addresses: %s, source: \"agent:%s\"}\n", a.net, a.id)
	}
	var res api.PolicyResult
	if err := s.admin.Call(ctx, http.MethodPut, "/api/v1/policy", nil, api.PutPolicy{Document: b.String()}, &res); err != nil {
		return fmt.Errorf("set the policy: %w", err)
	}
	s.say("\npolicy (version %d, signed into the site repository):\n%s", res.Policy.Version, indent(b.String()))
	return nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// enroll enrolls and starts the agents and the clients.
func (s *site) enroll(ctx context.Context) error {
	// One token for the agents (it may enroll update agents), another for
	// the clients (it may not), as an administrator would hand them out.
	uses := 0
	var agentTok, tok api.Token
	if err := s.admin.Call(ctx, http.MethodPost, "/api/v1/tokens", nil,
		api.TokenRequest{Domain: "default", Uses: &uses, Agents: true}, &agentTok); err != nil {
		return fmt.Errorf("create an enrollment token for the update agents: %w", err)
	}
	if err := s.admin.Call(ctx, http.MethodPost, "/api/v1/tokens", nil, api.TokenRequest{Domain: "default", Uses: &uses}, &tok); err != nil {
		return fmt.Errorf("create an enrollment token for the clients: %w", err)
	}
	for _, a := range demoAgents {
		port, err := freePort(a.addr)
		if err != nil {
			return err
		}
		m := &member{name: a.id, role: "agent", agentID: a.id, addr: a.addr, agentURL: fmt.Sprintf("http://%s:%d/", a.addr, port)}
		// Enrollment writes serve.listen from the agent URL.
		if err := s.start(ctx, m, agentTok.Secret); err != nil {
			return err
		}
		for i := 1; i <= s.o.ClientsPerAgent; i++ {
			addr := strings.TrimSuffix(a.addr, ".1") + fmt.Sprintf(".%d", 10+i)
			c := &member{name: fmt.Sprintf("client-%s-%d", strings.Split(a.id, "-")[1], i), role: "client", addr: addr}
			if err := s.start(ctx, c, tok.Secret); err != nil {
				return err
			}
		}
	}
	s.say("enrolled    %d endpoints (agents serve at %s and %s)", len(s.eps), s.eps[0].agentURL, s.eps[s.o.ClientsPerAgent+1].agentURL)
	return nil
}

func freePort(addr string) (int, error) {
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start enrolls an endpoint, writes its configuration and runs its daemon.
func (s *site) start(ctx context.Context, m *member, token string) error {
	m.config = filepath.Join(s.dir, "endpoints", m.name, "endpoint.yaml")
	// The vendor root comes from the origin, as an administrator brings
	// it out of band: enrollment checks the server's against its hash.
	root, err := s.origin.TrustedRoot()
	if err != nil {
		return fmt.Errorf("enroll %s: %w", m.name, err)
	}
	_, err = endpoint.Enroll(ctx, endpoint.EnrollOptions{Server: s.serverURL, Token: token, Fingerprint: s.fp.String(),
		Config: m.config, Hostname: m.name, Role: m.role, AgentID: m.agentID, AgentURL: m.agentURL, Addresses: []string{m.addr},
		VendorRootSHA256: trust.RootSHA256(root)})
	if err != nil {
		return fmt.Errorf("enroll %s: %w", m.name, err)
	}
	cfg, err := endpoint.LoadConfig(m.config)
	if err != nil {
		return err
	}
	if m.ep, err = endpoint.Open(cfg, endpoint.Options{Logger: s.log, Now: time.Now}); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	m.cancel, m.done = cancel, make(chan error, 1)
	go func() { m.done <- m.ep.Run(rctx) }()
	s.eps = append(s.eps, m)
	return nil
}

// update runs one manual update of every listed member: the agents one
// after the other, then the clients together (as they would, each on its
// own machine). Failures are listed unless the demo was interrupted.
func (s *site) update(ctx context.Context, members []*member) {
	var agents, clients []*member
	for _, m := range members {
		if m.ep == nil {
			continue
		}
		if m.role == "agent" {
			agents = append(agents, m)
		} else {
			clients = append(clients, m)
		}
	}
	errs := make([]error, len(members))
	for i, m := range agents {
		_, errs[i] = m.ep.Update(ctx, plan.Manual, nil)
	}
	var wg sync.WaitGroup
	for i, m := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[len(agents)+i] = m.ep.Update(ctx, plan.Manual, nil)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // interrupted: no failures to list
	}
	for i, m := range append(agents, clients...) {
		if errs[i] != nil {
			s.say("  %s: %v", m.name, errs[i])
		}
	}
}
