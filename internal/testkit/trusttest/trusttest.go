// Package trusttest builds small, validly signed TUF repositories with
// chosen delegations for tests of the packages that verify and copy
// signed metadata (trust, mirror): what whoever holds a delegating key
// can publish, without going through the checks of package repo.
package trusttest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Repo is a signed repository: its trusted root and the metadata files
// under the names a consistent-snapshot repository serves them
// (N.root.json, timestamp.json, N.snapshot.json, N.targets.json,
// N.<role>.json), and the target files by their consistent path.
type Repo struct {
	Root     []byte
	Metadata map[string][]byte
	Targets  map[string][]byte
}

// Delegation says how the top-level targets delegate.
type Delegation struct {
	// Roles are delegated roles by name, each delegated every path.
	Roles []string
	// BinsPrefix, if set, delegates by succinct hash bins (two bins,
	// named BinsPrefix-0 and BinsPrefix-1) instead.
	BinsPrefix string
}

// New signs a repository (version 1 of every role, valid for a day
// after now; one key signs every role) that delegates as d, with one
// target, "a.txt", listed by every delegated role.
func New(t testing.TB, now time.Time, d Delegation) *Repo {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, err := key.ID()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	exp := now.Add(24 * time.Hour).UTC()
	r := &Repo{Metadata: map[string][]byte{}, Targets: map[string][]byte{}}
	sign := func(name string, m interface {
		Sign(signature.Signer) (*metadata.Signature, error)
		ToBytes(bool) ([]byte, error)
	}) []byte {
		t.Helper()
		if _, err := m.Sign(signer); err != nil {
			t.Fatalf("sign %s: %v", name, err)
		}
		b, err := m.ToBytes(false)
		if err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		r.Metadata[name] = b
		return b
	}

	root := metadata.Root(exp)
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		if err := root.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
	}
	r.Root = sign("1.root.json", root)

	payload := []byte("delegated content\n")
	tf, err := metadata.TargetFile().FromBytes("a.txt", payload, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	r.Targets[fmt.Sprintf("%x.a.txt", sum)] = payload

	targets := metadata.Targets(exp)
	dl := &metadata.Delegations{Keys: map[string]*metadata.Key{id: key}}
	names := d.Roles
	if d.BinsPrefix != "" {
		dl.SuccinctRoles = &metadata.SuccinctRoles{KeyIDs: []string{id}, Threshold: 1, BitLength: 1, NamePrefix: d.BinsPrefix}
		names = dl.SuccinctRoles.GetRoles()
	} else {
		for _, n := range d.Roles {
			dl.Roles = append(dl.Roles, metadata.DelegatedRole{Name: n, KeyIDs: []string{id}, Threshold: 1, Paths: []string{"*"}})
		}
	}
	targets.Signed.Delegations = dl
	sign("1.targets.json", targets)

	snapshot := metadata.Snapshot(exp)
	for _, n := range names {
		role := metadata.Targets(exp)
		role.Signed.Targets["a.txt"] = tf
		sign("1."+n+".json", role)
		snapshot.Signed.Meta[n+".json"] = metadata.MetaFile(1)
	}
	sign("1.snapshot.json", snapshot)
	sign("timestamp.json", metadata.Timestamp(exp))
	return r
}

// Serve serves the repository as a source tree (BASE/<kind>/metadata/,
// BASE/<kind>/targets/) until the test ends and returns BASE. File names
// are matched after unescaping, without cleaning the path, as a hostile
// source would serve them.
func (r *Repo) Serve(t testing.TB, kind string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		files := r.Metadata
		name, ok := strings.CutPrefix(req.URL.Path, "/"+kind+"/metadata/")
		if !ok {
			files = r.Targets
			name, ok = strings.CutPrefix(req.URL.Path, "/"+kind+"/targets/")
		}
		b, found := files[name]
		if !ok || !found {
			http.NotFound(w, req)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}
