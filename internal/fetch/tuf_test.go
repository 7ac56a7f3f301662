package fetch

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// tufRepo writes a minimal signed consistent-snapshot repository (one
// ed25519 key for every role, no targets) into dir and returns the root.
func tufRepo(t *testing.T, dir string) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(24 * time.Hour)
	root := metadata.Root(expires)
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		if err := root.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
	}
	targets := metadata.Targets(expires)
	snapshot := metadata.Snapshot(expires)
	timestamp := metadata.Timestamp(expires)
	write := func(name string, sign func() ([]byte, error)) {
		data, err := sign()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var rootBytes []byte
	write("1.root.json", func() ([]byte, error) {
		if _, err := root.Sign(signer); err != nil {
			return nil, err
		}
		rootBytes, err = root.ToBytes(false)
		return rootBytes, err
	})
	write("1.targets.json", func() ([]byte, error) {
		if _, err := targets.Sign(signer); err != nil {
			return nil, err
		}
		return targets.ToBytes(false)
	})
	write("1.snapshot.json", func() ([]byte, error) {
		if _, err := snapshot.Sign(signer); err != nil {
			return nil, err
		}
		return snapshot.ToBytes(false)
	})
	write("timestamp.json", func() ([]byte, error) {
		if _, err := timestamp.Sign(signer); err != nil {
			return nil, err
		}
		return timestamp.ToBytes(false)
	})
	return rootBytes
}

// refresh runs a go-tuf refresh through our fetcher against srvURL.
func refresh(t *testing.T, f *Fetcher, srvURL string, root []byte, timestampMax int64) error {
	t.Helper()
	cfg, err := config.New(srvURL+"/metadata/", root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir = t.TempDir()
	cfg.LocalTargetsDir = t.TempDir()
	cfg.Fetcher = f.TUF(context.Background())
	if timestampMax > 0 {
		cfg.TimestampMaxLength = timestampMax
	}
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return up.Refresh()
}

// tufServer serves the repository in dir under /metadata/, answering
// missingStatus for files that do not exist.
func tufServer(t *testing.T, dir string, missingStatus int) string {
	files := http.StripPrefix("/metadata/", http.FileServer(http.Dir(dir)))
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/metadata/")
		if _, err := os.Stat(filepath.Join(dir, filepath.Base(name))); err != nil {
			w.WriteHeader(missingStatus)
			return
		}
		files.ServeHTTP(w, r)
	})
	return srv.URL
}

// go-tuf probes 2.root.json and must see a 404 chain to stop; the whole
// refresh then succeeds through the adapter.
func TestTUFRefresh(t *testing.T) {
	dir := t.TempDir()
	root := tufRepo(t, dir)
	url := tufServer(t, dir, http.StatusNotFound)
	if err := refresh(t, New(testOptions()), url, root, 0); err != nil {
		t.Fatalf("refresh: %v", err)
	}
}

// An object store answering 403 for a missing key fails the refresh,
// unless told to treat 403 as not found.
func TestTUFForbidden(t *testing.T) {
	dir := t.TempDir()
	root := tufRepo(t, dir)
	url := tufServer(t, dir, http.StatusForbidden)
	err := refresh(t, New(testOptions()), url, root, 0)
	wantClass(t, err, failure.HTTPError)
	var he *metadata.ErrDownloadHTTP
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("%v lacks ErrDownloadHTTP{403}", err)
	}
	opts := testOptions()
	opts.ForbiddenAsNotFound = true
	if err := refresh(t, New(opts), url, root, 0); err != nil {
		t.Fatalf("refresh with ForbiddenAsNotFound: %v", err)
	}
}

// A timestamp longer than the configured maximum is cut off and reported
// both as go-tuf's length error and as a verification failure.
func TestTUFOversizedTimestamp(t *testing.T) {
	dir := t.TempDir()
	root := tufRepo(t, dir)
	url := tufServer(t, dir, http.StatusNotFound)
	err := refresh(t, New(testOptions()), url, root, 100)
	wantClass(t, err, failure.Verification)
	if !errors.Is(err, &metadata.ErrDownload{}) {
		t.Fatalf("%v is not a go-tuf download error", err)
	}
	var le *metadata.ErrDownloadLengthMismatch
	if !errors.As(err, &le) {
		t.Fatalf("%v lacks ErrDownloadLengthMismatch", err)
	}
}

func TestTUFAdapterContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(testOptions()).TUF(ctx).DownloadFile("http://127.0.0.1:1/1.root.json", 100, 0)
	wantClass(t, err, failure.Local)
}
