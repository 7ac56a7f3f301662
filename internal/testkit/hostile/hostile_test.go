package hostile_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/hostile"
)

// tree writes files (slash-separated relative path -> content) under a
// new directory and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, data := range files {
		name := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var sample = map[string]string{
	"vendor/metadata/timestamp.json":                  `{"signed":{"version":3}}`,
	"vendor/metadata/3.snapshot.json":                 `{"signed":{"version":3,"kind":"new"}}`,
	"vendor/targets/components/abc.index.json":        `{"category":"components"}`,
	"vendor/targets/components/pattern/1/abc.sig.dat": strings.Repeat("payload-", 100),
}

// get fetches url without following redirects.
func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return testkit.Get(t, c, url, nil)
}

func TestOptionsRejected(t *testing.T) {
	dir := tree(t, sample)
	for name, o := range map[string]hostile.Options{
		"unknown behaviour":          {Behaviour: "polite", Dir: dir},
		"no tree":                    {Behaviour: hostile.Tamper},
		"missing tree":               {Behaviour: hostile.Tamper, Dir: filepath.Join(dir, "nope")},
		"rollback without Alt":       {Behaviour: hostile.Rollback, Dir: dir},
		"mix without Alt":            {Behaviour: hostile.Mix, Dir: dir},
		"redirect without target":    {Behaviour: hostile.RedirectScheme, Dir: dir},
		"invalid status":             {Behaviour: hostile.Status, Dir: dir, Status: 42},
		"connection-level handler":   {Behaviour: hostile.Hang, Dir: dir},
		"connection-level handler 2": {Behaviour: hostile.Refuse},
	} {
		if h, err := hostile.New(o); err == nil {
			h.Close()
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	if _, err := hostile.Start("127.0.0.1:0", hostile.Options{Behaviour: hostile.Tamper}); err == nil {
		t.Error("Start accepted a behaviour inside HTTP without a tree")
	}
}

func TestMatchers(t *testing.T) {
	paths := []string{
		"/vendor/metadata/timestamp.json",
		"/vendor/metadata/4.snapshot.json",
		"/vendor/metadata/2.bins-0a.json",
		"/vendor/targets/components/abc.index.json",
		"/vendor/targets/components/pattern/1/abc.sig.dat",
		"/vendor/targets/components/pattern/1/abc.index.json",
		"/vendor/targets/components/pattern/2/abc.sig.dat.from-1.cdlt",
	}
	for _, tt := range []struct {
		name  string
		match func(string) bool
		want  []bool
	}{
		{"Metadata", hostile.Metadata, []bool{true, true, true, false, false, false, false}},
		{"Targets", hostile.Targets, []bool{false, false, false, true, true, true, true}},
		{"Payload", hostile.Payload, []bool{false, false, false, false, true, true, false}},
		{"Delta", hostile.Delta, []bool{false, false, false, false, false, false, true}},
		{"Role(timestamp)", hostile.Role("timestamp"), []bool{true, false, false, false, false, false, false}},
		{"Role(snapshot)", hostile.Role("snapshot"), []bool{false, true, false, false, false, false, false}},
		{"Role(bins)", hostile.Role("bins"), []bool{false, false, true, false, false, false, false}},
	} {
		for i, p := range paths {
			if got := tt.match(p); got != tt.want[i] {
				t.Errorf("%s(%q) = %v, want %v", tt.name, p, got, tt.want[i])
			}
		}
	}
}

// TestMatchLeavesOtherRequestsHonest: only the selected requests
// misbehave; the rest are the tree's bytes.
func TestMatchLeavesOtherRequestsHonest(t *testing.T) {
	s := start(t, hostile.Options{Behaviour: hostile.Tamper, Dir: tree(t, sample), Match: hostile.Payload})
	for p, data := range sample {
		resp, b := get(t, s.URL+p)
		tampered := hostile.Payload("/" + p)
		if resp.StatusCode != http.StatusOK || bytes.Equal(b, []byte(data)) == tampered {
			t.Errorf("%s: status %d, tampered %v, want %v", p, resp.StatusCode, !bytes.Equal(b, []byte(data)), tampered)
		}
		if tampered && (len(b) != len(data) || resp.ContentLength != int64(len(data))) {
			t.Errorf("%s: tampered copy of %d bytes (declared %d), want %d", p, len(b), resp.ContentLength, len(data))
		}
	}
	if resp, _ := get(t, s.URL+"vendor/metadata/2.root.json"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: %d", resp.StatusCode)
	}
	if n := s.Misbehaved(); n != 1 {
		t.Errorf("misbehaved %d times, want 1", n)
	}
}

func TestBodies(t *testing.T) {
	dir := tree(t, sample)
	const p = "vendor/targets/components/pattern/1/abc.sig.dat"
	data := sample[p]
	for _, tt := range []struct {
		o        hostile.Options
		declared int64 // -1: chunked
		body     string
	}{
		{hostile.Options{Behaviour: hostile.ShortLength}, int64(len(data) / 2), data[:len(data)/2]},
		{hostile.Options{Behaviour: hostile.ShortLength, HideLength: true}, -1, data[:len(data)/2]},
		{hostile.Options{Behaviour: hostile.Oversize, Pad: 10}, int64(len(data) + 10), data + "          "},
		{hostile.Options{Behaviour: hostile.Oversize, Pad: 10, HideLength: true}, -1, data + "          "},
		{hostile.Options{Behaviour: hostile.Trickle, TrickleBytes: 200, TrickleEvery: time.Millisecond}, int64(len(data)), data},
		{hostile.Options{Behaviour: hostile.Rollback, Alt: tree(t, map[string]string{p: "old"})}, 3, "old"},
		{hostile.Options{Behaviour: hostile.Replace, Body: []byte("other")}, 5, "other"},
	} {
		tt.o.Dir = dir
		s := start(t, tt.o)
		resp, b := get(t, s.URL+p)
		if resp.ContentLength != tt.declared || string(b) != tt.body {
			t.Errorf("%s: declared %d, body of %d bytes; want %d and %d", tt.o.Behaviour, resp.ContentLength, len(b), tt.declared, len(tt.body))
		}
	}
}

func TestRedirects(t *testing.T) {
	dir := tree(t, sample)
	const p = "/vendor/metadata/timestamp.json"
	for _, tt := range []struct {
		o    hostile.Options
		from string
		want string
	}{
		{hostile.Options{Behaviour: hostile.RedirectLoop}, p, p + "?hop=1"},
		{hostile.Options{Behaviour: hostile.RedirectLoop}, p + "?hop=1", p},
		{hostile.Options{Behaviour: hostile.RedirectChain}, p + "?hop=7", p + "?hop=8"},
		{hostile.Options{Behaviour: hostile.RedirectScheme, RedirectTo: "ftp://mirror.example/base/"}, p, "ftp://mirror.example/base" + p},
	} {
		tt.o.Dir = dir
		s := start(t, tt.o)
		resp, _ := get(t, strings.TrimSuffix(s.URL, "/")+tt.from)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tt.want {
			t.Errorf("%s from %s: %d to %q, want %q", tt.o.Behaviour, tt.from, resp.StatusCode, resp.Header.Get("Location"), tt.want)
		}
	}
}

// TestMix: the mixed roles come from the other tree's newest version,
// whatever version is asked for; the timestamp stays.
func TestMix(t *testing.T) {
	alt := tree(t, map[string]string{
		"vendor/metadata/1.snapshot.json": "oldest",
		"vendor/metadata/2.snapshot.json": "older",
	})
	s := start(t, hostile.Options{Behaviour: hostile.Mix, Dir: tree(t, sample), Alt: alt, MixRoles: []string{"snapshot"}})
	if _, b := get(t, s.URL+"vendor/metadata/3.snapshot.json"); string(b) != "older" {
		t.Errorf("snapshot: %q", b)
	}
	if _, b := get(t, s.URL+"vendor/metadata/timestamp.json"); string(b) != sample["vendor/metadata/timestamp.json"] {
		t.Errorf("timestamp: %q", b)
	}
}

// TestConnectionLevel: Refuse leaves nothing listening; Reset and
// Garbage answer no HTTP; Close ends Hang's connections and Silent's
// requests.
func TestConnectionLevel(t *testing.T) {
	dir := tree(t, sample)
	for _, b := range []hostile.Behaviour{hostile.Refuse, hostile.Reset, hostile.Garbage, hostile.HeaderFlood, hostile.Hang, hostile.Silent} {
		s, err := hostile.Start("127.0.0.1:0", hostile.Options{Behaviour: b, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		// A response of any status is a failure of the behaviour; only a
		// transport error passes. (Do not judge by the error's text: it
		// holds port numbers, which may read "200".)
		done := make(chan error, 1)
		go func() {
			resp, err := http.Get(s.URL + "vendor/metadata/timestamp.json")
			if err == nil {
				resp.Body.Close()
				err = fmt.Errorf("%w: %s", errGotResponse, resp.Status)
			}
			done <- err
		}()
		if b == hostile.Hang || b == hostile.Silent {
			testkit.Eventually(t, time.Minute, fmt.Sprintf("%s to hold the request", b), func() bool {
				return s.Misbehaved() > 0 // the request is held: Close must end it
			})
			s.Close()
			err = <-done
		} else {
			err = <-done
			s.Close()
		}
		if err == nil || errors.Is(err, errGotResponse) {
			t.Errorf("%s: the request got %v, want a transport error", b, err)
		}
	}
}

// errGotResponse marks a request of TestConnectionLevel that got an HTTP
// response instead of a transport error.
var errGotResponse = errors.New("got an HTTP response")

// TestRefreshedCopy: the copy has a newer, validly signed timestamp that
// expires one period after the given time; the original is untouched.
func TestRefreshedCopy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := repo.Init(dir, repo.InitOptions{Options: repo.Options{Now: time.Now}, Settings: repo.Settings{Kind: repo.Vendor, Bins: 2}})
	if err != nil {
		t.Fatal(err)
	}
	tsFile := filepath.Join(r.PublishedDir(), "metadata", "timestamp.json")
	before, err := metadata.Timestamp().FromFile(tsFile)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-72 * time.Hour)
	published, err := hostile.RefreshedCopy(context.Background(), dir, filepath.Join(t.TempDir(), "copy"), at)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := metadata.Timestamp().FromFile(filepath.Join(published, "vendor", "metadata", "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ts.Signed.Version != before.Signed.Version+1 || !ts.Signed.IsExpired(time.Now()) || ts.Signed.IsExpired(at) {
		t.Errorf("copy's timestamp: version %d (original %d), expires %s", ts.Signed.Version, before.Signed.Version, ts.Signed.Expires)
	}
	if after, err := metadata.Timestamp().FromFile(tsFile); err != nil || after.Signed.Version != before.Signed.Version {
		t.Errorf("the original changed: %v", err)
	}
}

// TestSelfSigned: the pool accepts the certificate for its address.
func TestSelfSigned(t *testing.T) {
	conf, pool, err := hostile.SelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := hostile.Start("127.0.0.1:0", hostile.Options{Behaviour: hostile.Honest, Dir: tree(t, sample), TLS: conf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(s.URL + "vendor/metadata/timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(s.URL, "https://") {
		t.Errorf("%s: %s", s.URL, resp.Status)
	}
	if _, _, err := hostile.SelfSigned(); err == nil {
		t.Error("a certificate for no host")
	}
}
