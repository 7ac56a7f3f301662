package server_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// TestServerKeysFromDatabase: each server process records its key in the
// database when it starts, and every process answers enrollment and
// status with all the recorded keys, though none is configured with
// peer_keys: an endpoint enrolled at the first process pins a process
// that joined later, and the joined one names the first.
func TestServerKeysFromDatabase(t *testing.T) {
	c, a := newCluster(t)
	b := c.join("b")
	cl, ok := store.ClusterOf(b.srv.Store())
	if !ok {
		t.Fatal("no cluster")
	}
	ks, err := cl.ServerKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for _, k := range ks {
		recorded = append(recorded, k.Fingerprint)
	}
	for _, p := range []*peer{a, b} {
		if !slices.Contains(recorded, p.fp.String()) {
			t.Fatalf("recorded keys %v lack %s's %s", recorded, p.name, p.fp)
		}
	}
	uses := 2
	var tok api.Token
	if err := a.admin.Call(context.Background(), http.MethodPost, "/api/v1/tokens", nil, api.TokenRequest{Domain: "default", Uses: &uses}, &tok); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{a, b} {
		var res api.EnrollResponse
		anon, err := api.NewClient(api.ClientOptions{URL: p.url, Fingerprint: p.fp})
		if err != nil {
			t.Fatal(err)
		}
		if err := anon.Call(context.Background(), http.MethodPost, api.PathEnroll, nil,
			api.EnrollRequest{Token: tok.Secret, Hostname: "h-" + p.name}, &res); err != nil {
			t.Fatalf("enroll at %s: %v", p.name, err)
		}
		if len(res.ServerKeys) != 2 || res.ServerKeys[0] != p.fp.String() || !slices.Contains(res.ServerKeys, a.fp.String()) ||
			!slices.Contains(res.ServerKeys, b.fp.String()) {
			t.Fatalf("%s's enrollment answer names keys %v, want its own %s first, then the other's", p.name, res.ServerKeys, p.fp)
		}
		ep, err := api.NewClient(api.ClientOptions{URL: p.url, Fingerprint: p.fp, Token: res.Credential})
		if err != nil {
			t.Fatal(err)
		}
		var st api.StatusResponse
		if err := ep.Call(context.Background(), http.MethodPost, api.PathStatus, nil, api.StatusRequest{}, &st); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(st.ServerKeys, res.ServerKeys) {
			t.Fatalf("%s's status answer names keys %v, its enrollment answer %v", p.name, st.ServerKeys, res.ServerKeys)
		}
	}
}
