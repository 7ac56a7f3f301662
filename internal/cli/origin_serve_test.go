package cli

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/testkit"
)

// originServeTree writes a minimal published tree and returns DIR.
func originServeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	meta := filepath.Join(dir, "published", "vendor", "metadata")
	if err := os.MkdirAll(meta, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"timestamp.json": `{"signed":{"_type":"timestamp"}}`,
		"1.root.json":    `{"signed":{"_type":"root"}}`,
	} {
		if err := os.WriteFile(filepath.Join(meta, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.pem"), []byte("PRIVATE"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOriginServe(t *testing.T) {
	dir := originServeTree(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testkit.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runOriginServe(ctx, originServeOptions{Dir: dir, Listener: ln, TimestampMaxAge: 30 * time.Second}, &out, &errOut)
	}()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/vendor/metadata/timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "timestamp") ||
		resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "public, max-age=30" {
		t.Fatalf("timestamp.json: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp, err = http.Get(base + "/vendor/metadata/1.root.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("1.root.json: %v", resp.Header)
	}
	// The repository directory beside the tree (keys) is out of reach.
	req, _ := http.NewRequest("GET", base, nil)
	req.URL.Opaque = "/../secret.pem"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "PRIVATE") {
		t.Fatalf("traversal: %d %q", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if want := "at " + base + "/\n"; !strings.Contains(out.String(), want) {
		t.Fatalf("output %q lacks %q", out.String(), want)
	}
}

func TestOriginServeUsage(t *testing.T) {
	dir := originServeTree(t)
	tests := []struct {
		name string
		o    originServeOptions
		code int
	}{
		{"not a repository", originServeOptions{Dir: t.TempDir()}, 2},
		{"cert without key", originServeOptions{Dir: dir, TLSCert: "c.pem"}, 2},
		{"negative max age", originServeOptions{Dir: dir, TimestampMaxAge: -time.Second}, 2},
		{"missing TLS files", originServeOptions{Dir: dir, TLSCert: "missing.pem", TLSKey: "missing.pem"}, 1},
		{"bad listen address", originServeOptions{Dir: dir, Listen: "127.0.0.1:notaport"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := runOriginServe(context.Background(), tc.o, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			var ee *ExitError
			code := 1
			if errors.As(err, &ee) {
				code = ee.Code
			}
			if code != tc.code {
				t.Fatalf("status %d (%v), want %d", code, err, tc.code)
			}
		})
	}
}

func TestOriginServeCommand(t *testing.T) {
	cmd, _, err := NewRoot().Find([]string{"origin", "serve"})
	if err != nil || cmd.Name() != "serve" {
		t.Fatalf("origin serve not registered: %v", err)
	}
	for flag, def := range map[string]string{"listen": "127.0.0.1:8080", "tls-cert": "", "tls-key": "", "timestamp-max-age": "1m0s"} {
		f := cmd.Flags().Lookup(flag)
		if f == nil || f.DefValue != def {
			t.Errorf("--%s: %v", flag, f)
		}
	}
}
