package endpoint

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/testkit"
)

func TestConfigDefaultsAndErrors(t *testing.T) {
	c, err := ParseConfig([]byte("data_dir: /d\ntrusted_roots: {vendor: r.json}\n"), "/etc/cascade")
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != "client" || c.Schedule.Interval != time.Hour || c.Schedule.Jitter != 10*time.Minute ||
		c.Fetch.HeaderTimeout != time.Second || c.path("r.json") != "/etc/cascade/r.json" || c.ID == "" {
		t.Errorf("defaults: %+v", c)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"", "empty"},
		{"trusted_roots: {vendor: r}\n", "data_dir: required"},
		{"data_dir: d\n", "trusted_roots.vendor: required"},
		{"data_dir: d\ntrusted_roots: {vendor: r}\nrole: agent\n", "agent_id: required"},
		{"data_dir: d\ntrusted_roots: {vendor: r}\naddresses: [10.0.0]\n", `"10.0.0" is not an IP address`},
		{"data_dir: d\ntrusted_roots: {vendor: r}\nagents: {ua-1: ftp://x/}\n", "agents.ua-1"},
		{"data_dir: d\ntrusted_roots: {vendor: r}\nhooks: {patterns: [x]}\n", "unknown category"},
		{"data_dir: d\ntrusted_roots: {vendor: r}\nschedule: {interval: 1s}\n", "shorter than 10s"},
		{"data_dir: d\ntrusted_roots: {vendor: r}\nbogus: 1\n", "bogus"},
	} {
		_, err := ParseConfig([]byte(tt.yaml), ".")
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line with %q", tt.yaml, err, tt.want)
		}
	}
}

// TestDaemonUpdateNow starts the daemon and asks it for a run through the
// control socket, as `cascade endpoint update --now` does.
func TestDaemonUpdateNow(t *testing.T) {
	dir := t.TempDir()
	r, err := repo.Init(filepath.Join(dir, "origin"), repo.InitOptions{Options: repo.Options{Now: time.Now}, Settings: repo.Settings{Kind: repo.Vendor}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Publish(context.Background(), repo.Item{Category: "components", Name: "engine", Version: "7.1",
		Files: []repo.File{{Name: "eng.bin", Data: []byte("engine")}}}); err != nil {
		t.Fatal(err)
	}
	originURL := testkit.Serve(t, testkit.Listen(t, "127.0.0.3"), http.FileServer(http.Dir(filepath.Dir(r.PublishedDir()))))
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf("origin: %s\nserver: https://s.invalid/\ndownload_from_origin: true\n", originURL)), 0o644)
	cfg, err := ParseConfig([]byte("id: d1\ndata_dir: data\npolicy: policy.yaml\naddresses: [10.0.0.1]\n"+
		"trusted_roots: {vendor: origin/published/vendor/metadata/1.root.json}\nschedule: {interval: 1h, jitter: 1h}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	// Standard plan: the server (unreachable) then the origin.
	ep, err := Open(cfg, Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ep.Run(ctx) }()
	var rep *report.Report
	testkit.Eventually(t, 30*time.Second, "the daemon to run an update on request", func() bool {
		rep, err = RequestUpdate(context.Background(), cfg.DataDir)
		return err == nil
	})
	if rep.Trigger != "manual" || rep.Category(category.Components).Source != "origin" || rep.Category(category.Components).Result != report.Updated {
		t.Fatalf("report %+v %+v", rep, rep.Category(category.Components))
	}
	if fi, err := os.Stat(SocketPath(cfg.DataDir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", fi, err)
	}
	// Rollback goes through the daemon (which holds the install lock):
	// with one version installed there is nothing to roll back to.
	if _, err := RequestRollback(context.Background(), cfg.DataDir, category.Components); err == nil || errors.Is(err, ErrNoDaemon) {
		t.Fatalf("rollback through the daemon: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := RequestRollback(context.Background(), cfg.DataDir, category.Components); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("rollback without a daemon: %v, want ErrNoDaemon", err)
	}
	st, err := ReadStatus(cfg)
	if err != nil || st.LastReport == nil || st.LastReport.ID != rep.ID {
		t.Fatalf("status %+v, %v", st, err)
	}
}
