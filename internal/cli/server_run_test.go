package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/testkit"
)

// TestServerRunSecondProcess: `cascade server run` prints its "server at"
// line only once it listens and holds its data directory: a second run on
// the address in use fails without it, and one on another address is
// refused in one line because the SQLite database is taken.
func TestServerRunSecondProcess(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	originURL := serveOrigin(t, ctx, dir)
	ln, data, _ := initServer(t, dir, "server", originURL)
	addr := ln.Addr().String()
	// The first server holds the directory once it has printed its line.
	startServer(t, ctx, data, ln)

	code, out, stderr := run("server", "run", "--data", data)
	if code == 0 || strings.Contains(out, "server at") || !strings.Contains(stderr, "listen on "+addr) {
		t.Errorf("second server on the address in use: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	// Run directly, bounded: without the lock it would serve until stopped.
	var out2 testkit.Buffer
	tctx, tcancel := context.WithTimeout(ctx, 20*time.Second)
	defer tcancel()
	err := runServerRun(tctx, serverRunOptions{Data: data, Listen: "127.0.0.1:0"}, &out2)
	if err == nil || strings.Contains(out2.String(), "server at") || !strings.Contains(err.Error(), "another cascade server is running on") ||
		strings.Contains(err.Error(), "\n") {
		t.Errorf("second server on the same SQLite directory: %v\nstdout: %s", err, out2.String())
	}
}
