// Package cluster runs real `cascade server` processes on one PostgreSQL
// database for the benchmarks of several server processes: a cascade
// binary built from the working tree, an origin served over loopback, a
// first server (`cascade server init`, an admin token) and further ones
// made by `cascade server join`, each started, killed and restarted as a
// process of its own.
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/server/api"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Cluster is a built cascade binary, an origin, and the servers made so far.
type Cluster struct {
	Dir   string
	bin   string
	dsn   string   // without the password: the commands refuse one in a URL
	env   []string // PGPASSWORD
	DB    *sql.DB
	Token string // the admin token
	// Origin is the origin's URL; its repository is Dir/origin.
	Origin  string
	origin  *http.Server
	Servers []*Server
}

// Server is one `cascade server run` and its data directory.
type Server struct {
	Name, Dir, URL string
	FP             api.Fingerprint
	API            *api.Client
	c              *Cluster
	mu             sync.Mutex
	cmd            *exec.Cmd
	out            *lockedWriter
	done           chan struct{}
}

// New builds the cascade binary into a temporary directory, publishes a
// component to a new origin and serves it on 127.0.0.1. dsn is a
// PostgreSQL database (its search_path the benchmark's schema).
func New(ctx context.Context, dsn string) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "cascade-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: filepath.Join(dir, "cascade")}
	build := exec.CommandContext(ctx, "go", "build", "-o", c.bin, "./cmd/cascade")
	if out, err := build.CombinedOutput(); err != nil {
		c.Close()
		return nil, fmt.Errorf("build cascade: %w\n%s", err, out)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if pw, ok := u.User.Password(); ok {
		c.env = append(c.env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	c.dsn = u.String()
	if c.DB, err = sql.Open("pgx", dsn); err != nil {
		c.Close()
		return nil, err
	}
	originDir := filepath.Join(dir, "origin")
	if _, err := c.Run(ctx, "origin", "init", originDir, "--bins", "16"); err != nil {
		c.Close()
		return nil, err
	}
	payload := filepath.Join(dir, "payload")
	data := make([]byte, 4096)
	rand.Read(data)
	if err := os.WriteFile(payload, data, 0o644); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Run(ctx, "origin", "publish", originDir, "--component", "pattern", "--version", "1.0", payload); err != nil {
		c.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.Close()
		return nil, err
	}
	c.origin = &http.Server{Handler: http.FileServer(http.Dir(filepath.Join(originDir, "published"))), ReadHeaderTimeout: 10 * time.Second}
	go c.origin.Serve(ln) //nolint:errcheck // ends with Close
	c.Origin = "http://" + ln.Addr().String() + "/"
	return c, nil
}

// Run runs one cascade command to its end and returns its output.
func (c *Cluster) Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("cascade %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// environ is this process's environment without CASCADE_ variables,
// with the database password.
func (c *Cluster) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CASCADE_") {
			env = append(env, kv)
		}
	}
	return append(env, c.env...)
}

// freeAddr returns a free 127.0.0.1 port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

var fingerprintRE = regexp.MustCompile(`fingerprint: +(sha256:[0-9a-f]+)`)

// Add makes a server: the first with `cascade server init` (and an admin
// token), the others with `cascade server join`. tune edits its
// server.json (may be nil). It does not start it.
func (c *Cluster) Add(ctx context.Context, tune func(cfg map[string]any)) (*Server, error) {
	name := fmt.Sprintf("server-%d", len(c.Servers)+1)
	dir := filepath.Join(c.Dir, name)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	base := "https://" + addr + "/"
	var out string
	if len(c.Servers) == 0 {
		vendorRoot := filepath.Join(c.Dir, "origin", "published", "vendor", "metadata", "1.root.json")
		out, err = c.Run(ctx, "server", "init", dir, "--origin", c.Origin, "--vendor-root", vendorRoot,
			"--listen", addr, "--url", base, "--database", c.dsn)
	} else {
		first := c.Servers[0].Dir
		if _, err := os.Stat(filepath.Join(first, "key-secret")); err != nil {
			return nil, fmt.Errorf("join %s: the first server has not run yet: %w", name, err)
		}
		out, err = c.Run(ctx, "server", "join", "--data", dir, "--database", c.dsn, "--key-secret",
			filepath.Join(first, "key-secret"), "--listen", addr, "--url", base)
	}
	if err != nil {
		return nil, err
	}
	m := fingerprintRE.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("%s: no fingerprint in %q", name, out)
	}
	fp, err := api.ParseFingerprint(m[1])
	if err != nil {
		return nil, err
	}
	if len(c.Servers) == 0 {
		out, err := c.Run(ctx, "server", "admin", "create", "--data", dir, "--name", "bench")
		if err != nil {
			return nil, err
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		c.Token = strings.TrimSpace(lines[len(lines)-1])
	}
	if tune != nil {
		if err := editJSON(filepath.Join(dir, "server.json"), tune); err != nil {
			return nil, err
		}
	}
	s := &Server{Name: name, Dir: dir, URL: base, FP: fp, c: c}
	if s.API, err = api.NewClient(api.ClientOptions{URL: base, Token: c.Token, Fingerprint: fp, UserAgent: "cascade-bench"}); err != nil {
		return nil, err
	}
	c.Servers = append(c.Servers, s)
	return s, nil
}

var startedRE = regexp.MustCompile(`cascade server at (\S+)`)

// Start runs `cascade server run` and waits (up to a minute) until it
// says it serves.
func (s *Server) Start(ctx context.Context) error {
	cmd := exec.Command(s.c.bin, "server", "run", "--data", s.Dir)
	cmd.Env = s.c.environ()
	w := &lockedWriter{b: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = w, w
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck // killed
	s.mu.Lock()
	s.cmd, s.out, s.done = cmd, w, done
	s.mu.Unlock()
	deadline := time.Now().Add(time.Minute)
	for !startedRE.Match(w.bytes()) {
		select {
		case <-done:
			return fmt.Errorf("%s exited: %s", s.Name, w.bytes())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not start in a minute: %s", s.Name, w.bytes())
		}
	}
	return nil
}

// Kill sends sig to the process and waits for it to end.
func (s *Server) Kill(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	signalGroup(cmd, sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		signalGroup(cmd, syscall.SIGKILL)
		<-done
	}
}

// Pid is the running process's id.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Output is what the process has written so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return string(s.out.bytes())
}

// Status is the server's /api/v1/status.
func (s *Server) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := s.API.Call(ctx, http.MethodGet, "/api/v1/status", nil, nil, &st)
	return st, err
}

// WaitFor polls the status until cond holds (d at most).
func (s *Server) WaitFor(ctx context.Context, d time.Duration, what string, cond func(api.Status) bool) error {
	deadline := time.Now().Add(d)
	for {
		st, err := s.Status(ctx)
		if err == nil && cond(st) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: waited %s for %s (last error %v)", s.Name, d, what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartWriter adds a server process (tune edits its server.json), starts
// it and waits until it is the writer and has synced from the origin.
func (c *Cluster) StartWriter(ctx context.Context, tune func(cfg map[string]any)) (*Server, error) {
	s, err := c.Add(ctx, tune)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	if err := s.WaitFor(ctx, time.Minute, "the first server to be the writer and synced",
		func(st api.Status) bool { return st.Writer && st.LastSync != nil }); err != nil {
		return nil, err
	}
	return s, nil
}

// StartFollower starts s and waits until it follows another process's
// writer.
func (s *Server) StartFollower(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	return s.WaitFor(ctx, time.Minute, "the second server to follow", func(st api.Status) bool { return !st.Writer })
}

// NewestVersion is the newest site version in the database and who
// signed it (0, "" when none).
func (c *Cluster) NewestVersion(ctx context.Context) (int64, string, error) {
	var v int64
	var w string
	err := c.DB.QueryRowContext(ctx, `SELECT version, writer FROM site_versions ORDER BY version DESC LIMIT 1`).Scan(&v, &w)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read the newest site version: %w", err)
	}
	return v, w, nil
}

// WaitVersion polls the database every poll until a site version newer
// than after is recorded, and returns it, who signed it and when it was
// seen.
func (c *Cluster) WaitVersion(ctx context.Context, after int64, poll, d time.Duration) (int64, string, time.Time, error) {
	deadline := time.Now().Add(d)
	for {
		v, w, err := c.NewestVersion(ctx)
		now := time.Now()
		if err != nil {
			return 0, "", now, err
		}
		if v > after {
			return v, w, now, nil
		}
		if now.After(deadline) {
			return 0, "", now, fmt.Errorf("no site version after %d within %s", after, d)
		}
		time.Sleep(poll)
	}
}

// Close stops every server and the origin and removes the directory.
func (c *Cluster) Close() {
	for _, s := range c.Servers {
		s.Kill(syscall.SIGTERM)
	}
	if c.origin != nil {
		c.origin.Close()
	}
	if c.DB != nil {
		c.DB.Close()
	}
	os.RemoveAll(c.Dir)
}

type lockedWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.b.Bytes())
}

// editJSON rewrites a JSON object file through edit.
func editJSON(name string, edit func(map[string]any)) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	edit(m)
	if b, err = json.MarshalIndent(m, "", "  "); err != nil {
		return err
	}
	return atomicfile.WriteFile(name, append(b, '\n'), 0o600)
}

// Restarted is an error when PostgreSQL was restarted since since (as
// Started said), which spoils any figure measured over that time.
func (c *Cluster) Restarted(ctx context.Context, since time.Time) error {
	t, err := c.Started(ctx)
	if err != nil {
		return err
	}
	if !t.Equal(since) {
		return fmt.Errorf("PostgreSQL restarted at %s, during the measurement (another user of the database server?): "+
			"its figures are not valid, run again", t.UTC().Format(time.TimeOnly))
	}
	return nil
}

// Started is when the PostgreSQL server started.
func (c *Cluster) Started(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := c.DB.QueryRowContext(ctx, `SELECT pg_postmaster_start_time()`).Scan(&t); err != nil {
		return t, fmt.Errorf("read when PostgreSQL started: %w", err)
	}
	return t, nil
}
