// Package agent is the HTTP service of an update agent (docs/agents.md): an endpoint designated to relay updates serves its
// verified copies of the vendor repository and, when it trusts one, of the
// site repository, in the source-tree layout every source uses
// (ARCHITECTURE.md), so a client treats an agent like any other source.
//
// What is served, and when:
//
//   - Refresh copies a repository from the source the agent's own update
//     run chose (internal/mirror): all metadata, so clients can resolve
//     any target through the hash bins, and the targets clients of the
//     current state need (every category index and the newest version of
//     every item), each verified before it is renamed into place, with
//     timestamp.json written last. A new version therefore becomes visible
//     atomically, and a refresh right after each update run (scheduled,
//     manual or notify-components) is the prefetch: the tree is current
//     before clients ask. Files the agent installed itself are copied
//     locally instead of downloaded again.
//   - Pull-through: a request for a content-addressed target that the
//     agent's verified metadata names but that is not on disk (an older
//     version a deployment cap or a program approval keeps clients on) is
//     fetched from the agent's upstream once however many clients ask
//     (singleflight), verified against its signed length and sha256,
//     stored and served. A request waits for it briefly, then gets 503
//     with Retry-After.
//   - Chains and cycles: an agent's upstream may be another agent. Every
//     request an agent sends upstream carries the Cascade-Relay header
//     listing the agents it passes through; an agent never pulls through
//     for a request that already passed it, nor beyond MaxRelayHops, so
//     a cycle of agents can delay an update but never loop or deadlock:
//     each agent serves only what it has already verified.
//   - Load control: at most MaxDownloads requests for the tree are served
//     at once; the others get 503 with Retry-After, which cascade clients
//     retry within a small budget before trying their next source
//     (internal/fetch). An optional bandwidth limit (a token bucket shared
//     by all responses) paces the agent's total upload; without it, files
//     go out through sendfile.
//   - Observability: /metrics (Prometheus), /healthz, structured access
//     logs, and a status file that `cascade endpoint status` reads.
//   - Over plain HTTP, revalidations of unchanged files and requests for
//     missing metadata files are answered by internal/fastpath (answer),
//     without net/http, unless Options.NoFastPath; everything else by
//     Handler.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/cascade-update/cascade/internal/fastpath"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/httpserver"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/trust"
)

// Options configure an Agent. ID, Dir, StateDir, Roots["vendor"] and Now
// are required; every other field's default is in its comment.
type Options struct {
	// ID is the agent's id (as in `agent:ID` entries). It is sent upstream
	// in the Cascade-Relay header so that cycles of agents are detected.
	ID string
	// Dir is the served tree: Dir/vendor/... and Dir/site/....
	Dir string
	// StateDir holds the agent's trusted metadata of what it serves
	// (StateDir/trust/<kind>) and its status file. It must not be inside
	// Dir.
	StateDir string
	// Roots are the initial trusted root.json of each repository the agent
	// serves, by kind: "vendor" (required) and "site" (optional). They are
	// used the first time only; later the trusted metadata in StateDir
	// applies.
	Roots map[string][]byte
	// Fetch configures the requests the agent sends upstream (refresh and
	// pull-through). Its Transport, or the default transport built from
	// it, is wrapped to add the Cascade-Relay header.
	Fetch fetch.Options
	// Local, if set, returns a local file that may hold the content of a
	// target (sha256 in lowercase hex, length), such as the agent's own
	// installed copy; see mirror.Options.Local.
	Local func(sha256 string, length int64) string

	// Listen is the address to serve on (default ":8080"), unless
	// Listener is set.
	Listen string
	// Listener, if set, is served instead of listening on Listen.
	Listener net.Listener
	// CertFile and KeyFile, both or neither, make the agent serve HTTPS.
	CertFile, KeyFile string
	// MaxDownloads bounds the requests for the tree served at once
	// (default 256); more get 503 with Retry-After.
	MaxDownloads int
	// RetryAfter is the wait a 503 asks for (default 2s, whole seconds).
	RetryAfter time.Duration
	// BandwidthLimit caps the agent's total upload in bytes per second
	// (0: unlimited, and files go out through sendfile).
	BandwidthLimit int64
	// MutableMaxAge is the Cache-Control max-age of timestamp.json
	// (default 10s; negative: "no-cache"). Clients revalidate it with a
	// conditional GET, answered 304 while it is unchanged.
	MutableMaxAge time.Duration
	// PullWait is how long a request for a target being pulled through
	// waits before it gets 503 with Retry-After (default 500ms: below
	// the clients' response-header timeout).
	PullWait time.Duration
	// PullTimeout bounds one pull-through download (default 30m; the
	// fetcher's minimum rate abandons a stalled one sooner).
	PullTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	// NoFastPath turns internal/fastpath off: plain HTTP is then served
	// by net/http alone, as HTTPS always is.
	NoFastPath bool

	// Logger receives service records (default: discard).
	Logger *slog.Logger
	// AccessLog, if set, receives one record per request.
	AccessLog *slog.Logger
	// Now is the clock (required).
	Now func() time.Time
}

// MaxRelayHops is the longest chain of agents a request may have passed
// through for an agent to pull through for it.
const MaxRelayHops = 8

// Kinds are the repositories an agent may serve, in refresh order.
var Kinds = []string{"vendor", "site"}

// Agent is an update agent's HTTP service. Create it with New, refresh it
// after update runs, serve it with Run, and Close it.
type Agent struct {
	o       Options
	log     *slog.Logger
	files   *static.Handler
	stores  map[string]*trust.Store
	fetcher *fetch.Fetcher
	m       *metrics
	bucket  *bucket                 // nil: no bandwidth limit
	service map[string]http.Handler // the services' paths (services)
	handler http.Handler

	pulls    singleflight.Group
	pullCtx  context.Context // cancelled by Close: ends pulls in flight
	stopPull context.CancelFunc

	refreshMu sync.Mutex // one refresh at a time
	mu        sync.Mutex
	served    map[string]*served // by kind
	status    Status             // persisted to the status file
}

// StatusFile is the name of the status file in Options.StateDir.
const StatusFile = "status.json"

// New opens the agent's trusted metadata (creating it from Options.Roots
// the first time) and what it already serves.
func New(o Options) (*Agent, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("agent: served tree: %w", err)
	}
	// The agent is the only writer of its tree and tells the handler
	// after each refresh (Forget), so revalidations may skip the disk.
	files, err := static.New(o.Dir, static.Options{MutableMaxAge: o.MutableMaxAge, RevalidateAfter: time.Second, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{o: o, log: o.Logger, files: files, stores: map[string]*trust.Store{},
		m: newMetrics(), served: map[string]*served{}}
	if o.BandwidthLimit > 0 {
		a.bucket = newBucket(o.BandwidthLimit)
	}
	a.pullCtx, a.stopPull = context.WithCancel(context.Background())
	a.fetcher = fetch.New(relayOptions(o.Fetch, o.ID))
	for _, kind := range Kinds {
		if o.Roots[kind] == nil {
			continue
		}
		if a.stores[kind], err = openStore(filepath.Join(o.StateDir, "trust", kind), kind, o.Roots[kind], o.Now, o.Logger); err != nil {
			a.Close()
			return nil, err
		}
	}
	a.loadStatus()
	a.restore(context.Background())
	a.service = a.services()
	a.handler = a.routes()
	return a, nil
}

func (o *Options) defaults() error {
	if o.ID == "" || o.Dir == "" || o.StateDir == "" || o.Now == nil || o.Roots["vendor"] == nil {
		return errors.New("agent options: ID, Dir, StateDir, Roots[\"vendor\"] and Now are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Listen == "" {
		o.Listen = ":8080"
	}
	if o.MaxDownloads <= 0 {
		o.MaxDownloads = 256
	}
	if o.RetryAfter < time.Second {
		o.RetryAfter = 2 * time.Second
	}
	switch {
	case o.MutableMaxAge == 0:
		o.MutableMaxAge = 10 * time.Second
	case o.MutableMaxAge < 0:
		o.MutableMaxAge = 0
	}
	if o.PullWait <= 0 {
		o.PullWait = 500 * time.Millisecond
	}
	if o.PullTimeout <= 0 {
		o.PullTimeout = 30 * time.Minute
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return errors.New("agent options: a TLS certificate needs its key and a key its certificate")
	}
	return nil
}

func openStore(dir, kind string, root []byte, now func() time.Time, log *slog.Logger) (*trust.Store, error) {
	o := trust.Options{Kind: kind, Now: now, Logger: log}
	if _, err := os.Lstat(filepath.Join(dir, "current")); err == nil {
		s, err := trust.Open(dir, o)
		if err != nil {
			return nil, fmt.Errorf("agent: open trusted %s metadata: %w", kind, err)
		}
		return s, nil
	}
	s, err := trust.Init(dir, root, o)
	if err != nil {
		return nil, fmt.Errorf("agent: init trusted %s metadata: %w", kind, err)
	}
	return s, nil
}

// Handler returns the agent's HTTP handler: the tree, /metrics, /healthz.
func (a *Agent) Handler() http.Handler { return a.handler }

// Close ends pulls in flight and releases the served tree.
func (a *Agent) Close() error {
	a.stopPull()
	return a.files.Close()
}

// Run listens on Options.Listen (or serves Options.Listener) until ctx is
// cancelled, then shuts down gracefully; see Serve.
func (a *Agent) Run(ctx context.Context) error {
	ln := a.o.Listener
	if ln == nil {
		var err error
		if ln, err = Listen(ctx, a.o.Listen); err != nil {
			return err
		}
	}
	return a.Serve(ctx, ln)
}

// Listen opens the TCP listener an agent serves on. Its connections get
// no TCP keep-alive probes (and so no setsockopt calls for them on every
// accepted connection, of which endpoints open one per check): the
// server's idle timeout closes idle connections, and a dead peer fails
// the writes of a response.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent: listen: %w", err)
	}
	return ln, nil
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully.
// It keeps the status file current while it runs.
func (a *Agent) Serve(ctx context.Context, ln net.Listener) error {
	a.mu.Lock()
	a.status.Listen = ln.Addr().String()
	a.status.TLS = a.o.CertFile != ""
	a.status.Started = a.o.Now().UTC()
	a.mu.Unlock()
	a.saveStatus()
	srv := httpserver.NewServer(a.handler, a.log)
	fresh := closeFreshOnShutdown(srv)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.statusLoop(ctx) }()
	go func() { defer wg.Done(); <-ctx.Done(); fresh() }()
	var err error
	if a.o.CertFile == "" && !a.o.NoFastPath {
		// Plain HTTP: revalidations are answered without net/http.
		err = fastpath.Serve(ctx, ln, fastpath.Options{Answer: a.answer, Server: srv,
			ShutdownTimeout: a.o.ShutdownTimeout, Logger: a.log})
	} else {
		err = httpserver.Run(ctx, srv, ln, httpserver.Options{CertFile: a.o.CertFile, KeyFile: a.o.KeyFile,
			ShutdownTimeout: a.o.ShutdownTimeout, Logger: a.log})
	}
	cancel()
	wg.Wait()
	a.saveStatus()
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// closeFreshOnShutdown tracks the connections on which no request has
// arrived yet (spare connections clients dialled) and returns a function
// that closes them. A graceful shutdown would otherwise wait up to five
// seconds for each to send a request.
func closeFreshOnShutdown(srv *http.Server) func() {
	var mu sync.Mutex
	fresh := map[net.Conn]struct{}{}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if s == http.StateNew {
			fresh[c] = struct{}{}
		} else {
			delete(fresh, c)
		}
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for c := range fresh {
			c.Close()
		}
	}
}

// statusLoop saves the status file every few seconds while counters move.
func (a *Agent) statusLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := a.m.requestCount(); n != last {
				last = n
				a.saveStatus()
			}
		}
	}
}
