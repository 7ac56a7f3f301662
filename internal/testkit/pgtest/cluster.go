package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a PostgreSQL server of the test's own, for tests that must
// stop or restart the database (which they must never do to the machine's
// PostgreSQL, which other tests share): initdb into a new directory,
// started with pg_ctl on a free 127.0.0.1 port with its unix socket in
// that directory, stopped and removed at the test's cleanup. PostgreSQL
// refuses to run as root: a test running as root runs it as the postgres
// user (runuser), the directory handed to that user.
type Cluster struct {
	bin  string // the directory of initdb and pg_ctl
	dir  string // the cluster's directory: data/, the socket, the log
	port int
	as   string // the user the server runs as; "": this process's
}

// Binaries returns the directory of the PostgreSQL server programs
// (initdb, pg_ctl): the newest /usr/lib/postgresql/VERSION/bin (Debian,
// Ubuntu), else the one on PATH. The error says what was looked for.
func Binaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil && isExec(filepath.Join(filepath.Dir(p), "initdb")) {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server programs (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH")
}

func isExec(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// StartCluster makes and starts a private cluster, stopped and removed
// at t's cleanup. It skips t when no PostgreSQL server programs are
// installed (Binaries).
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := Binaries()
	if err != nil {
		t.Skip("cannot start a private PostgreSQL cluster: " + err.Error())
	}
	// Not t.TempDir: its parents are private to this user, and the server
	// may run as another.
	dir, err := os.MkdirTemp("", "cascade-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{bin: bin, dir: dir}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := os.Stat(c.data("postmaster.pid")); err == nil {
			if err := c.pgctl(ctx, "stop", "-m", "immediate"); err != nil {
				t.Errorf("stop the private PostgreSQL cluster: %v", err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove the private PostgreSQL cluster: %v", err)
		}
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("start a private PostgreSQL cluster: PostgreSQL refuses to run as root and there is no postgres user to run it as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.as = "postgres"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := c.run(ctx, "initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync"); err != nil {
		t.Fatalf("initdb the private PostgreSQL cluster: %v: %s", err, out)
	}
	// A free port may be taken between the probe and the start: try again.
	for try := 0; ; try++ {
		c.port = freePort(t)
		err := c.pgctl(ctx, "start", "-o", c.options())
		if err == nil {
			break
		}
		if try == 2 {
			t.Fatalf("start the private PostgreSQL cluster: %v", err)
		}
	}
	return c
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// data is a path in the cluster's data directory.
func (c *Cluster) data(elem ...string) string {
	return filepath.Join(append([]string{c.dir, "data"}, elem...)...)
}

// options are the server's: the port, the socket in the cluster's
// directory, TCP on 127.0.0.1 only.
func (c *Cluster) options() string {
	return fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", c.port, c.dir)
}

// run runs one of the PostgreSQL programs, as the cluster's user.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	name := filepath.Join(c.bin, prog)
	if c.as != "" {
		args = append([]string{"-u", c.as, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

// pgctl runs pg_ctl ACTION on the cluster, waiting for it to finish; a
// failure carries the end of the server's log.
func (c *Cluster) pgctl(ctx context.Context, action string, args ...string) error {
	args = append([]string{action, "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60"}, args...)
	out, err := c.run(ctx, "pg_ctl", args...)
	if err == nil {
		return nil
	}
	log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
	if len(log) > 2000 {
		log = log[len(log)-2000:]
	}
	return fmt.Errorf("pg_ctl %s: %w: %s (server log: %s)", action, err, strings.TrimSpace(string(out)), strings.TrimSpace(string(log)))
}

// DSN returns the URL of database db on the cluster, as its superuser
// "postgres" over TCP (no password: the cluster trusts local
// connections).
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// CreateDatabase creates database name on the cluster and returns its
// DSN.
func (c *Cluster) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	db, err := sql.Open("pgx", c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE DATABASE "`+strings.ReplaceAll(name, `"`, `""`)+`"`); err != nil {
		t.Fatalf("create database %s on the private PostgreSQL cluster: %v", name, err)
	}
	return c.DSN(name)
}

// Restart stops the server, ending every session (pg_ctl's fast mode:
// transactions in flight are rolled back), and starts it again on the
// same port; it returns once the server accepts connections.
func (c *Cluster) Restart(ctx context.Context) error {
	return c.pgctl(ctx, "restart", "-m", "fast", "-o", c.options())
}
