package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"go.yaml.in/yaml/v3"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/trust"
)

// EnrollOptions are the arguments of Enroll.
type EnrollOptions struct {
	// Server is the management server's base URL. Required.
	Server string
	// Token is the enrollment token (`cascade server token create`).
	Token string
	// Fingerprint pins the server's certificate (printed by the server
	// at start); empty verifies it against the system roots instead.
	Fingerprint string
	// OtherServers are the URLs of the site's other management servers,
	// used after Server in this order: the configuration's server: list
	// (docs/server.md, "Endpoints with several server URLs").
	OtherServers []string
	// OtherFingerprints are the key fingerprints of the site's other
	// servers, obtained out of band like Fingerprint: the server enrolled
	// with may match any of them, and the endpoint pins them all, with
	// the keys the server answers with (api.EnrollResponse.ServerKeys).
	OtherFingerprints []string
	// Config is the configuration file to write. Required.
	Config string
	// DataDir is the endpoint's data directory (default: "data" next to
	// Config).
	DataDir string
	// Hostname names the endpoint (default: the machine's host name).
	Hostname string
	// Role, AgentID and AgentURL ask for a role ("client" by default; an
	// "agent" needs AgentID and a token created with --agents). The
	// administrator can change them later.
	Role, AgentID, AgentURL string
	// Addresses are the endpoint's addresses (default: its interfaces').
	Addresses []string
	// Force replaces an existing configuration file and enrollment.
	Force bool
	// VendorRoot is the vendor's trusted root.json as the administrator
	// obtained it out of band (from the vendor, or the origin), and
	// VendorRootSHA256 its hash (trust.RootSHA256, printed by `cascade
	// origin init` and `origin status`): enrollment refuses a server that
	// sends another vendor root, since whoever holds that root's keys
	// signs the components the endpoint installs. One of the two is
	// required, unless TrustServerVendorRoot accepts the server's root
	// unchecked (then a compromised server, or whoever holds its TLS key,
	// can give the endpoint a vendor root of its own and so any
	// component).
	VendorRoot            []byte
	VendorRootSHA256      string
	TrustServerVendorRoot bool
	// HTTPClient, if set, sends the enrollment request (tests).
	HTTPClient *http.Client
}

// EnrollResult says what Enroll wrote.
type EnrollResult struct {
	EndpointID string
	Domain     string
	Config     string
	DataDir    string
}

// Enroll registers this endpoint with a management server and writes
// what it needs to use it: in the data directory, the server's URL and
// the pinned keys of the site's servers, the endpoint credential (0600), the vendor and site
// trust roots, the current policy and the agent directory; and the
// configuration file, which `cascade endpoint run` then uses.
func Enroll(ctx context.Context, o EnrollOptions) (*EnrollResult, error) {
	if err := checkEnroll(&o); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	if o.AgentURL != "" {
		if _, err := agentListen(o.AgentURL); err != nil { // before the server records it
			return nil, fmt.Errorf("enroll: %w", err)
		}
	}
	var pins []api.Fingerprint
	for _, f := range append([]string{o.Fingerprint}, o.OtherFingerprints...) {
		if f == "" {
			continue
		}
		fp, err := api.ParseFingerprint(f)
		if err != nil {
			return nil, fmt.Errorf("enroll: %w", err)
		}
		pins = append(pins, fp)
	}
	// The pins written are the key fingerprint of the server that a
	// given pin accepted (which may be of the certificate's form), the
	// other pins given, and the keys of the site's servers it answers
	// with.
	var seenKey, seenPin atomic.Pointer[api.Fingerprint]
	httpc := o.HTTPClient
	if httpc == nil && len(pins) > 0 {
		tr := api.NewTransport(api.Fingerprint{}, nil)
		tr.TLSClientConfig = api.PinnedTLSConfigSet(func() []api.Fingerprint { return pins },
			func(key, pin api.Fingerprint) { seenKey.Store(&key); seenPin.Store(&pin) })
		httpc = &http.Client{Transport: tr}
	}
	c, err := api.NewClient(api.ClientOptions{URL: o.Server, HTTPClient: httpc, UserAgent: "cascade-enroll"})
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	var res api.EnrollResponse
	err = c.Call(ctx, http.MethodPost, api.PathEnroll, nil, api.EnrollRequest{Token: o.Token, Hostname: o.Hostname,
		Role: o.Role, AgentID: o.AgentID, AgentURL: o.AgentURL, Addresses: o.Addresses}, &res)
	if err != nil {
		return nil, fmt.Errorf("enroll with %s: %w", o.Server, err)
	}
	if got := trust.RootSHA256(res.VendorRoot); o.VendorRootSHA256 != "" && got != o.VendorRootSHA256 {
		return nil, fmt.Errorf("enroll: refused the server's vendor root: its SHA-256 is %s, the expected one is %s "+
			"(nothing written; the server registered %s, revoke it)", got, o.VendorRootSHA256, res.EndpointID)
	}
	enr := enrollment{URL: strings.TrimRight(o.Server, "/") + "/", EndpointID: res.EndpointID, Domain: res.Domain}
	if len(pins) > 0 {
		set := &pinSet{}
		if key := seenKey.Load(); key != nil {
			set.add([]string{key.String()})
		}
		for _, fp := range pins {
			if pin := seenPin.Load(); pin == nil || *pin != fp { // the pin that matched is recorded as the key's
				set.add([]string{fp.String()})
			}
		}
		set.add(res.ServerKeys)
		set.record(&enr)
	}
	if err := writeEnrollment(o, enr, &res); err != nil {
		return nil, fmt.Errorf("enroll: endpoint %s is registered, but saving its enrollment failed: %w", res.EndpointID, err)
	}
	return &EnrollResult{EndpointID: res.EndpointID, Domain: res.Domain, Config: o.Config, DataDir: o.DataDir}, nil
}

// checkEnroll validates the options and fills the defaults.
func checkEnroll(o *EnrollOptions) error {
	if err := api.CheckServerURL(o.Server); err != nil {
		return err
	}
	for _, u := range o.OtherServers {
		if err := api.CheckServerURL(u); err != nil {
			return err
		}
	}
	if err := checkVendorRootOptions(o); err != nil {
		return err
	}
	switch {
	case o.Token == "":
		return errors.New("an enrollment token is required")
	case o.Config == "":
		return errors.New("a configuration file is required")
	}
	var err error
	if o.Config, err = filepath.Abs(o.Config); err != nil {
		return err
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(filepath.Dir(o.Config), "data")
	}
	if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
		return err
	}
	if o.Hostname == "" {
		if o.Hostname, err = os.Hostname(); err != nil {
			return fmt.Errorf("no host name: %w", err)
		}
	}
	for _, a := range o.Addresses {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("address %q is not an IP address", a)
		}
	}
	if o.Force {
		return nil
	}
	if _, err := os.Stat(o.Config); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s exists (use --force to replace it)", o.Config)
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, serverDir, enrollmentFile)); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is already enrolled (use --force to enroll again)", o.DataDir)
	}
	return nil
}

// ErrVendorRootCheck: enrollment was given no way, or more than one, to
// check the server's vendor root.
var ErrVendorRootCheck = errors.New("check the server's vendor root against one of: the vendor's root.json (--vendor-root FILE), " +
	"its hash (--vendor-root-sha256, printed by cascade origin init and origin status), or nothing (--trust-server-vendor-root)")

// VendorRootChecks counts the ways o gives to check the server's vendor
// root: enrollment needs exactly one (ErrVendorRootCheck).
func (o *EnrollOptions) VendorRootChecks() int {
	n := 0
	for _, set := range []bool{o.VendorRoot != nil, o.VendorRootSHA256 != "", o.TrustServerVendorRoot} {
		if set {
			n++
		}
	}
	return n
}

// checkVendorRootOptions requires exactly one way to trust the vendor
// root, and turns VendorRoot into the hash to check.
func checkVendorRootOptions(o *EnrollOptions) error {
	switch {
	case o.VendorRootChecks() != 1:
		return ErrVendorRootCheck
	case o.VendorRoot != nil:
		if _, err := metadata.Root().FromBytes(o.VendorRoot); err != nil {
			return fmt.Errorf("vendor root: not a TUF root.json: %w", err)
		}
		o.VendorRootSHA256 = trust.RootSHA256(o.VendorRoot)
	case o.VendorRootSHA256 != "":
		h, err := trust.ParseRootSHA256(o.VendorRootSHA256)
		if err != nil {
			return err
		}
		o.VendorRootSHA256 = h
	}
	return nil
}

// enrolledConfig is the configuration file Enroll writes.
type enrolledConfig struct {
	ID string `yaml:"id"`
	// Server lists the site's servers when enrollment was given several.
	Server       []string `yaml:"server,omitempty"`
	Role         string   `yaml:"role"`
	AgentID      string   `yaml:"agent_id,omitempty"`
	Domain       string   `yaml:"domain"`
	Addresses    []string `yaml:"addresses,omitempty"`
	DataDir      string   `yaml:"data_dir"`
	Policy       string   `yaml:"policy"`
	TrustedRoots struct {
		Vendor string `yaml:"vendor"`
		Site   string `yaml:"site"`
	} `yaml:"trusted_roots"`
	// Serve is an update agent's serve: section, listening where its
	// agent URL says (the rest of the section keeps its defaults).
	Serve *struct {
		Listen string `yaml:"listen"`
	} `yaml:"serve,omitempty"`
}

// agentListen is the address an update agent whose clients reach it at
// agentURL listens on: the URL's port (80 or 443 without one) on the
// URL's host when it is an IP address, on every interface when it is a
// name (which may resolve to addresses this machine does not have).
func agentListen(agentURL string) (string, error) {
	u, err := url.Parse(agentURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return "", fmt.Errorf("agent URL %q is not an absolute http(s) URL", agentURL)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := u.Hostname()
	if net.ParseIP(host) == nil {
		host = ""
	}
	return net.JoinHostPort(host, port), nil
}

// writeEnrollment writes the data directory's files, then the
// configuration, which it checks by loading it.
func writeEnrollment(o EnrollOptions, enr enrollment, res *api.EnrollResponse) error {
	dir := filepath.Join(o.DataDir, serverDir)
	roots := filepath.Join(o.DataDir, "roots")
	for _, d := range []string{dir, roots} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	enrJSON, err := json.MarshalIndent(enr, "", "  ")
	if err != nil {
		return err
	}
	agents, err := json.Marshal(res.Agents)
	if err != nil {
		return err
	}
	cfg := enrolledConfig{ID: o.Hostname, Role: res.Role, AgentID: res.AgentID, Domain: res.Domain,
		Addresses: o.Addresses, DataDir: o.DataDir, Policy: filepath.Join(dir, policyFile)}
	if len(o.OtherServers) > 0 {
		cfg.Server = append([]string{enr.URL}, o.OtherServers...)
	}
	cfg.TrustedRoots.Vendor = filepath.Join(roots, "vendor.json")
	cfg.TrustedRoots.Site = filepath.Join(roots, "site.json")
	if res.Role == string(plan.RoleAgent) && o.AgentURL != "" {
		listen, err := agentListen(o.AgentURL)
		if err != nil {
			return err
		}
		cfg.Serve = &struct {
			Listen string `yaml:"listen"`
		}{listen}
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{cfg.TrustedRoots.Vendor, res.VendorRoot, 0o644},
		{cfg.TrustedRoots.Site, res.SiteRoot, 0o644},
		{cfg.Policy, []byte(res.Policy), 0o644},
		{filepath.Join(dir, agentsFile), agents, 0o644},
		{filepath.Join(dir, credentialFile), []byte(res.Credential + "\n"), 0o600},
		{filepath.Join(dir, enrollmentFile), append(enrJSON, '\n'), 0o644},
	}
	for _, f := range files {
		if err := saveServerFile(f.name, f.data, f.perm); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(o.Config), 0o755); err != nil {
		return err
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	head := fmt.Sprintf("# Written by `cascade endpoint enroll`: endpoint %s of domain %s, server %s\n", res.EndpointID, res.Domain, enr.URL)
	if err := saveServerFile(o.Config, append([]byte(head), y...), 0o644); err != nil {
		return err
	}
	_, err = LoadConfig(o.Config)
	return err
}
