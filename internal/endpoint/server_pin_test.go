package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
)

func readEnrollment(t *testing.T, ep *Endpoint) enrollment {
	t.Helper()
	var enr enrollment
	b, err := os.ReadFile(filepath.Join(ep.cfg.DataDir, serverDir, enrollmentFile))
	if err != nil || json.Unmarshal(b, &enr) != nil {
		t.Fatalf("enrollment: %s %v", b, err)
	}
	return enr
}

// TestLegacyCertificatePinMigrates: an endpoint enrolled by an earlier
// version pins the server's certificate; it keeps reaching the server,
// replaces that pin by the key's after its first verified call, and so
// still reaches the server once its certificate is renewed for the same
// key, which the certificate pin would refuse.
func TestLegacyCertificatePinMigrates(t *testing.T) {
	ps := newSiteServer(t, 0)
	leaf := ps.cert.Load().Leaf
	certPin, keyPin := api.CertFingerprintOf(leaf.Raw), api.KeyFingerprintOf(leaf)
	ep := mustOpenEnrolled(t, enrollment{URL: ps.URL, Fingerprint: certPin.String(), EndpointID: "ep_1", Domain: "default"})
	ep.server.refresh(context.Background(), ep)
	enr := readEnrollment(t, ep)
	if enr.KeyFingerprint != keyPin.String() || enr.Fingerprint != "" || enr.URL != ps.URL || enr.EndpointID != "ep_1" {
		t.Fatalf("after the first call the enrollment is %+v, want key_fingerprint %s and no certificate pin", enr, keyPin)
	}

	ps.renew()
	ps.stop() // the renewed certificate is served from a restart
	ps.start()
	if err := status(t, mustOpenEnrolled(t, enr)); err != nil {
		t.Fatalf("key pin after the renewal: %v", err)
	}
	legacy := mustOpenEnrolled(t, enrollment{URL: ps.URL, Fingerprint: certPin.String(), EndpointID: "ep_1", Domain: "default"})
	if err := status(t, legacy); !errors.Is(err, api.ErrFingerprint) {
		t.Fatalf("the old certificate pin after the renewal: %v, want a pin error", err)
	}
}

// TestServerLinkWrongPin: the daemon's server link says which key the
// server has and which one is pinned.
func TestServerLinkWrongPin(t *testing.T) {
	ps := newSiteServer(t, 0)
	key := ps.keyFP()
	wrong := key
	wrong[31] ^= 1
	err := status(t, mustOpenEnrolled(t, enrollment{URL: ps.URL, KeyFingerprint: wrong.String(), EndpointID: "ep_1", Domain: "default"}))
	want := "the server's key fingerprint is " + key.String() + ", the pinned one is " + wrong.String()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("wrong pin: %v\nwant it to say %q", err, want)
	}
}

// TestServerLinkRefusesPlainHTTP: an enrollment whose server URL is
// http:// (the credential would travel in clear) does not open.
func TestServerLinkRefusesPlainHTTP(t *testing.T) {
	_, err := openEnrolled(t, enrollment{URL: "http://127.0.0.1:8443/", EndpointID: "ep_1", Domain: "default"}, "", time.Now)
	if err == nil || !strings.Contains(err.Error(), "http://") || !strings.Contains(err.Error(), "in clear") {
		t.Fatalf("open with an http:// enrollment: %v", err)
	}
}
