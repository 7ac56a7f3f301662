package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/static"
)

// TestMirrorOfLiveOrigin: `cascade origin serve` serves a live origin on
// one loopback address, `cascade mirror` copies it, a static server
// serves the copy on another, and an endpoint whose list names the
// mirror updates from it with content identical to the origin's.
func TestMirrorOfLiveOrigin(t *testing.T) {
	dir := t.TempDir()
	origin := filepath.Join(dir, "origin")
	mustRun(t, "origin", "init", origin, "--bins", "16")
	for i, v := range []string{"1.0", "1.1"} {
		f := filepath.Join(dir, fmt.Sprintf("p%d", i))
		os.WriteFile(f, []byte("pattern "+v), 0o644)
		mustRun(t, "origin", "publish", origin, "--component", "pattern", "--version", v, f)
	}
	ln, err := net.Listen("tcp", "127.0.0.7:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- runOriginServe(ctx, originServeOptions{Dir: origin, Listener: ln}, io.Discard, io.Discard)
	}()
	defer func() { cancel(); <-served }()
	originURL := "http://" + ln.Addr().String() + "/"

	mirrorDir := filepath.Join(dir, "mirror")
	root := filepath.Join(origin, "published", "vendor", "metadata", "1.root.json")
	out := mustRun(t, "mirror", "--from", originURL, "--to", mirrorDir, "--root", root)
	if !strings.Contains(out, "updated") || !strings.Contains(out, "4 targets, 4 fetched") {
		t.Fatalf("mirror: %s", out)
	}
	if out = mustRun(t, "mirror", "--from", originURL, "--to", mirrorDir); !strings.Contains(out, "up to date") {
		t.Fatalf("second mirror: %s", out)
	}
	h, err := static.New(mirrorDir, static.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	mln, err := net.Listen("tcp", "127.0.0.8:0")
	if err != nil {
		t.Fatal(err)
	}
	msrv := &http.Server{Handler: h}
	go msrv.Serve(mln)
	defer msrv.Close()
	mirrorURL := "http://" + mln.Addr().String() + "/"

	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(fmt.Sprintf(
		"origin: %q\nserver: https://server.invalid/\nclients: {source: customized}\nfallback_to_server: {components: false}\n"+
			"custom_sources:\n  - {addresses: 10.1.0.0/16, source: %q}\n", originURL, mirrorURL)), 0o644)
	os.WriteFile(filepath.Join(dir, "endpoint.yaml"), []byte("data_dir: data\npolicy: policy.yaml\naddresses: [10.1.2.3]\n"+
		"trusted_roots: {vendor: origin/published/vendor/metadata/1.root.json}\n"), 0o644)
	rep := updateOnce(t, filepath.Join(dir, "endpoint.yaml"))
	c := rep.Category(category.Components)
	if c.Result != report.Updated || c.Source != mirrorURL || c.After["pattern"] != "1.1" {
		t.Fatalf("update from the mirror: %+v", c)
	}
	code, _, stderr := run("mirror", "--from", "ftp://x/", "--to", mirrorDir)
	if code != 2 || !strings.Contains(stderr, "not an absolute http(s) URL") {
		t.Fatalf("bad --from: exit %d %s", code, stderr)
	}
}
