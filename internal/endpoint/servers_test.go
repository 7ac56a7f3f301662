package endpoint

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/notify"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/trusttest"
)

// siteServer is one management server of a site, as an enrolled
// endpoint sees it: HTTPS with a key of its own on an address of its own,
// answering the status call, taking reports and holding event streams.
// It can be stopped (its address then refuses connections) and started
// again on the same address.
type siteServer struct {
	t    *testing.T
	addr string // ip:port, the same across restarts
	URL  string
	key  *ecdsa.PrivateKey
	cert atomic.Pointer[tls.Certificate]

	// serverKeys is what the status answer says of the site's keys.
	serverKeys atomic.Pointer[[]string]
	statuses   atomic.Int32 // status calls answered
	streams    atomic.Int32 // event streams opened
	events     chan notify.Event

	mu      sync.Mutex
	reports []api.ReportUpload
	srv     *http.Server
}

// newSiteServer starts a server on loopback address number n.
func newSiteServer(t *testing.T, n int) *siteServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &siteServer{t: t, key: key, events: make(chan notify.Event, 4)}
	s.renew()
	ln := testkit.Listen(t, testkit.LoopbackIP(n))
	s.addr = ln.Addr().String()
	s.URL = "https://" + s.addr + "/"
	s.serve(ln)
	t.Cleanup(s.stop)
	return s
}

// keyFP is the fingerprint of the server's key.
func (s *siteServer) keyFP() api.Fingerprint { return api.KeyFingerprintOf(s.cert.Load().Leaf) }

// renew serves a new self-signed certificate for the same key (`cascade
// server cert renew`).
func (s *siteServer) renew() {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "cascade server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &s.key.PublicKey, s.key)
	if err != nil {
		s.t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	s.cert.Store(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: s.key, Leaf: c})
}

func (s *siteServer) serve(ln net.Listener) {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer cred" {
				http.Error(w, `{"error":"unknown credential"}`, http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("POST "+api.PathStatus, auth(func(w http.ResponseWriter, r *http.Request) {
		s.statuses.Add(1)
		resp := api.StatusResponse{EndpointID: "ep_1", Domain: "default", Role: "client"}
		if k := s.serverKeys.Load(); k != nil {
			resp.ServerKeys = *k
		}
		json.NewEncoder(w).Encode(resp)
	}))
	mux.HandleFunc("POST "+api.PathEnroll, func(w http.ResponseWriter, r *http.Request) {
		resp := api.EnrollResponse{EndpointID: "ep_1", Credential: "cred", Domain: "default", Role: "client",
			VendorRoot: []byte(`{}`), SiteRoot: []byte(`{}`), Policy: "origin: https://o.example/\nserver: " + s.URL + "\n"}
		if k := s.serverKeys.Load(); k != nil {
			resp.ServerKeys = *k
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(resp)
	})
	mux.HandleFunc("POST "+api.PathReports, auth(func(w http.ResponseWriter, r *http.Request) {
		var up api.ReportUpload
		if err := json.NewDecoder(r.Body).Decode(&up); err != nil {
			http.Error(w, `{"error":"bad report"}`, http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.reports = append(s.reports, up)
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"r"}`))
	}))
	mux.HandleFunc("GET "+api.PathEvents, auth(func(w http.ResponseWriter, r *http.Request) {
		s.streams.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte(": connected\n\n"))
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-s.events:
				b, _ := notify.Encode(ev)
				w.Write(b)
				w.(http.Flusher).Flush()
			}
		}
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	tlsLn := tls.NewListener(ln, &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }})
	go srv.Serve(tlsLn)
}

// stop closes the server and every connection: its address refuses.
func (s *siteServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// start serves again on the same address.
func (s *siteServer) start() {
	s.t.Helper()
	var ln net.Listener
	testkit.Eventually(s.t, 10*time.Second, "the server's address to be free again", func() bool {
		var err error
		ln, err = net.Listen("tcp", s.addr)
		return err == nil
	})
	s.serve(ln)
}

func (s *siteServer) uploads() []api.ReportUpload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]api.ReportUpload(nil), s.reports...)
}

// hangingURL is an https URL on loopback address number n whose server
// accepts connections and never answers; accepted counts them.
func hangingURL(t *testing.T, n int) (string, *atomic.Int32) {
	ln := &countingListener{Listener: testkit.Listen(t, testkit.LoopbackIP(n))}
	testkit.Hang(t, ln)
	return "https://" + ln.Addr().String() + "/", &ln.accepted
}

type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// openEnrolled writes an enrollment (enr, with the credential "cred") and
// a configuration with the extra lines conf, and opens the endpoint with
// the clock now. The fetch timeouts are short: servers die on purpose.
func openEnrolled(t *testing.T, enr enrollment, conf string, now func() time.Time) (*Endpoint, error) {
	t.Helper()
	dir := t.TempDir()
	root := trusttest.New(t, time.Now(), trusttest.Delegation{}).Root
	os.WriteFile(filepath.Join(dir, "root.json"), root, 0o644)
	os.MkdirAll(filepath.Join(dir, "data", serverDir), 0o700)
	b, _ := json.Marshal(enr)
	os.WriteFile(filepath.Join(dir, "data", serverDir, enrollmentFile), b, 0o644)
	os.WriteFile(filepath.Join(dir, "data", serverDir, credentialFile), []byte("cred\n"), 0o600)
	cfg, err := ParseConfig([]byte("id: ep\ndata_dir: data\ntrusted_roots: {vendor: root.json}\n"+
		"fetch: {connect_timeout: 300ms, header_timeout: 300ms}\n"+conf), dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := Open(cfg, Options{Now: now})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { ep.Close() })
	return ep, nil
}

// mustOpenEnrolled opens an endpoint enrolled as enr, with the
// enrollment's server URL.
func mustOpenEnrolled(t *testing.T, enr enrollment) *Endpoint {
	t.Helper()
	ep, err := openEnrolled(t, enr, "", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// serverList is the configuration line listing urls.
func serverList(urls ...string) string { return "server: [" + strings.Join(urls, ", ") + "]\n" }

// pinned is an enrollment pinning the keys of servers.
func pinned(servers ...*siteServer) enrollment {
	enr := enrollment{URL: servers[0].URL, EndpointID: "ep_1", Domain: "default"}
	for _, s := range servers {
		enr.KeyFingerprints = append(enr.KeyFingerprints, s.keyFP().String())
	}
	enr.KeyFingerprint = enr.KeyFingerprints[0]
	return enr
}

func status(t *testing.T, ep *Endpoint) error {
	t.Helper()
	return ep.server.client.Call(context.Background(), http.MethodPost, api.PathStatus, nil, api.StatusRequest{}, nil)
}

// TestServerCallsFailOver: of three servers the first refuses and the
// second hangs; the status call and the report reach the third. Both
// failures are remembered, so the next call goes to the third at once;
// the first server, back, is used again once its failure is forgotten.
func TestServerCallsFailOver(t *testing.T) {
	third := newSiteServer(t, 3)
	first := newSiteServer(t, 1)
	first.stop()
	second, accepted := hangingURL(t, 2)
	clock := testkit.NewClock(time.Now())
	ep, err := openEnrolled(t, pinned(first, third), serverList(first.URL, second, third.URL), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ep.server.refresh(context.Background(), ep)
	if third.statuses.Load() != 1 || accepted.Load() != 1 {
		t.Fatalf("status calls: third %d, hanging accepted %d; want the third server after one try of the second",
			third.statuses.Load(), accepted.Load())
	}
	rep := &report.Report{ID: "r1", Trigger: plan.Manual, Started: clock.Now(), Finished: clock.Now(), Result: report.UpToDate}
	ep.server.upload(context.Background(), rep)
	if got := third.uploads(); len(got) != 1 {
		t.Fatalf("the third server got %d reports, want 1", len(got))
	}
	if names, _ := outboxNames(filepath.Join(ep.server.dir, outboxDir)); len(names) != 0 {
		t.Fatalf("outbox %v after an upload a server took", names)
	}
	if accepted.Load() != 1 {
		t.Fatalf("the hanging server was contacted again (%d connections) while its failure is remembered", accepted.Load())
	}

	first.start()
	ep.server.refresh(context.Background(), ep)
	if first.statuses.Load() != 0 || third.statuses.Load() != 2 {
		t.Fatalf("status calls while the first server's failure is remembered: first %d, third %d", first.statuses.Load(), third.statuses.Load())
	}
	clock.Advance(31 * time.Second) // the default failover.failed_ttl, 30s
	ep.server.refresh(context.Background(), ep)
	if first.statuses.Load() != 1 || third.statuses.Load() != 2 {
		t.Fatalf("status calls after the failure is forgotten: first %d, third %d; want the first server again",
			first.statuses.Load(), third.statuses.Load())
	}
}

// TestServerCallsAllDown: with every server down the call fails naming
// each, and the report waits in the outbox for the next upload, which
// the server back takes.
func TestServerCallsAllDown(t *testing.T) {
	a, b := newSiteServer(t, 4), newSiteServer(t, 5)
	a.stop()
	b.stop()
	ep, err := openEnrolled(t, pinned(a, b), serverList(a.URL, b.URL), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	err = status(t, ep)
	if err == nil || !strings.Contains(err.Error(), "no server answered (2 tried)") ||
		!strings.Contains(err.Error(), a.addr) || !strings.Contains(err.Error(), b.addr) {
		t.Fatalf("status with every server down: %v", err)
	}
	now := time.Now()
	ep.server.upload(context.Background(), &report.Report{ID: "r1", Trigger: plan.Manual, Started: now, Finished: now, Result: report.UpToDate})
	if names, _ := outboxNames(filepath.Join(ep.server.dir, outboxDir)); len(names) != 1 {
		t.Fatalf("outbox %v, want the report kept", names)
	}
	b.start()
	ep.server.flush(context.Background())
	if len(b.uploads()) != 1 {
		t.Fatalf("the server back got %d reports, want the one kept", len(b.uploads()))
	}
}

// TestUnpinnedServerRefused: a server whose key is not in the pinned set
// is refused (the call goes to the next server, which is pinned), and
// alone it is an error naming its key and the pinned ones.
func TestUnpinnedServerRefused(t *testing.T) {
	good, rogue := newSiteServer(t, 6), newSiteServer(t, 7)
	other := newSiteServer(t, 8) // pinned, not listed
	ep, err := openEnrolled(t, pinned(good, other), serverList(rogue.URL, good.URL), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ep.server.refresh(context.Background(), ep)
	if rogue.statuses.Load() != 0 || good.statuses.Load() != 1 {
		t.Fatalf("status calls: unpinned %d, pinned %d; want only the pinned server", rogue.statuses.Load(), good.statuses.Load())
	}
	alone, err := openEnrolled(t, pinned(good, other), serverList(rogue.URL), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	err = status(t, alone)
	want := "the server's key fingerprint is " + rogue.keyFP().String() + ", the 2 pinned ones are " +
		good.keyFP().String() + ", " + other.keyFP().String()
	if !errors.Is(err, api.ErrFingerprint) || !strings.Contains(err.Error(), want) || rogue.statuses.Load() != 0 {
		t.Fatalf("status to an unpinned server: %v\nwant it to say %q", err, want)
	}
}

// TestServerKeysLearned: a pinned server's status answer adds the keys of
// the site's servers the set lacks (a server that joined) to the
// enrollment, which then accepts that server, also after its certificate
// is renewed for the same key; an unpinned server's answer teaches
// nothing.
func TestServerKeysLearned(t *testing.T) {
	a, joined := newSiteServer(t, 9), newSiteServer(t, 10)
	a.serverKeys.Store(&[]string{a.keyFP().String(), joined.keyFP().String()})
	ep, err := openEnrolled(t, pinned(a), serverList(a.URL, joined.URL), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := status(t, ep); err != nil {
		t.Fatal(err)
	}
	ep.server.refresh(context.Background(), ep)
	enr := readEnrollment(t, ep)
	want := []string{a.keyFP().String(), joined.keyFP().String()}
	if strings.Join(enr.KeyFingerprints, " ") != strings.Join(want, " ") || enr.KeyFingerprint != want[0] {
		t.Fatalf("enrollment pins %v (key_fingerprint %s), want %v", enr.KeyFingerprints, enr.KeyFingerprint, want)
	}
	a.stop()
	joined.renew()
	if err := status(t, ep); err != nil || joined.statuses.Load() != 1 {
		t.Fatalf("status to the joined server, its certificate renewed: %v (%d calls)", err, joined.statuses.Load())
	}

	// A server the set does not pin is not listened to.
	rogue := newSiteServer(t, 11)
	rogue.serverKeys.Store(&[]string{rogue.keyFP().String()})
	alone, err := openEnrolled(t, pinned(a), serverList(rogue.URL), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	alone.server.refresh(context.Background(), alone)
	if enr := readEnrollment(t, alone); len(enr.KeyFingerprints) != 1 {
		t.Fatalf("an unpinned server's answer changed the pins: %v", enr.KeyFingerprints)
	}
}

// TestEventStreamFailsOver: the event stream opens on the first server;
// when that server dies the stream reconnects to the next, whose
// notifications arrive.
func TestEventStreamFailsOver(t *testing.T) {
	a, b := newSiteServer(t, 12), newSiteServer(t, 13)
	ep, err := openEnrolled(t, pinned(a, b), serverList(a.URL, b.URL), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	connected := make(chan struct{}, 4)
	got := make(chan notify.Event, 4)
	done := make(chan error, 1)
	go func() {
		done <- ep.server.listen(ctx, func() { connected <- struct{}{} }, func(ev notify.Event) { got <- ev })
	}()
	defer func() {
		cancel()
		<-done
	}()
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s within 20s", what)
		}
	}
	event := func(want string) {
		t.Helper()
		select {
		case ev := <-got:
			if ev.ID != want {
				t.Fatalf("event %s, want %s", ev.ID, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no event %s within 20s", want)
		}
	}
	wait("stream", connected)
	if a.streams.Load() != 1 || b.streams.Load() != 0 {
		t.Fatalf("streams: first %d, second %d; want the first server's", a.streams.Load(), b.streams.Load())
	}
	a.events <- notify.Event{ID: "n1", Versions: map[string]string{"pattern": "1.0"}}
	event("n1")
	a.stop()
	wait("stream after the first server died", connected)
	if b.streams.Load() != 1 {
		t.Fatalf("streams to the second server: %d, want 1", b.streams.Load())
	}
	b.events <- notify.Event{ID: "n2", Versions: map[string]string{"pattern": "2.0"}}
	event("n2")
}

// TestEnrollRecordsPinSet: enrolling with the fingerprints of two of the
// site's servers reaches the one whose key is the second given, and pins
// the key it saw, the other given, and the keys the server answers with,
// each once, in that order; the configuration lists every server URL. A
// server none of the fingerprints matches is refused and nothing is
// written.
func TestEnrollRecordsPinSet(t *testing.T) {
	a, b, c := newSiteServer(t, 14), newSiteServer(t, 15), newSiteServer(t, 16)
	b.serverKeys.Store(&[]string{b.keyFP().String(), a.keyFP().String(), c.keyFP().String()})
	dir := t.TempDir()
	o := EnrollOptions{Server: b.URL, OtherServers: []string{a.URL, c.URL}, Token: "tok", Config: filepath.Join(dir, "endpoint.yaml"),
		Fingerprint: a.keyFP().String(), OtherFingerprints: []string{b.keyFP().String()}, TrustServerVendorRoot: true, Hostname: "h"}
	if _, err := Enroll(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(o.Config)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Server, " ") != b.URL+" "+a.URL+" "+c.URL {
		t.Fatalf("configuration server: %q", cfg.Server)
	}
	var enr enrollment
	raw, _ := os.ReadFile(filepath.Join(dir, "data", serverDir, enrollmentFile))
	if err := json.Unmarshal(raw, &enr); err != nil {
		t.Fatal(err)
	}
	want := []string{b.keyFP().String(), a.keyFP().String(), c.keyFP().String()}
	if strings.Join(enr.KeyFingerprints, " ") != strings.Join(want, " ") || enr.KeyFingerprint != want[0] || enr.URL != b.URL {
		t.Fatalf("enrollment %+v, want pins %v", enr, want)
	}

	rogue := newSiteServer(t, 17)
	dir = t.TempDir()
	o.Server, o.OtherServers, o.Config = rogue.URL, nil, filepath.Join(dir, "endpoint.yaml")
	_, err = Enroll(context.Background(), o)
	if !errors.Is(err, api.ErrFingerprint) {
		t.Fatalf("enroll with an unpinned server: %v, want a pin error", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused enrollment wrote %d files", len(entries))
	}
}

// TestStandaloneServerList: a standalone endpoint resolves the server
// source to its configuration's server: list, in order, instead of its
// policy's server; without the list, to the policy's.
func TestStandaloneServerList(t *testing.T) {
	dir := t.TempDir()
	root := trusttest.New(t, time.Now(), trusttest.Delegation{}).Root
	os.WriteFile(filepath.Join(dir, "root.json"), root, 0o644)
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("origin: https://o.example/\nserver: https://policy.example/\n"), 0o644)
	for _, c := range []struct{ conf, want string }{
		{"server: [https://a.example:8443, https://b.example:8443/]\n", "https://a.example:8443/ https://b.example:8443/"},
		{"", "https://policy.example/"},
	} {
		cfg, err := ParseConfig([]byte("id: ep\ndata_dir: data\npolicy: policy.yaml\ntrusted_roots: {vendor: root.json}\n"+c.conf), dir)
		if err != nil {
			t.Fatal(err)
		}
		ep, err := Open(cfg, Options{Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		got, err := ep.resolve(policy.Source{Kind: policy.Server})
		ep.Close()
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("config %q: server resolves to %q %v, want %s", c.conf, got, err, c.want)
		}
	}
}
