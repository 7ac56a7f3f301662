package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseFingerprint(t *testing.T) {
	var f Fingerprint
	for i := range f {
		f[i] = byte(i * 7)
	}
	hex := strings.TrimPrefix(f.String(), "sha256:")
	var colons []string
	for i := 0; i < len(hex); i += 2 {
		colons = append(colons, strings.ToUpper(hex[i:i+2]))
	}
	for _, s := range []string{f.String(), hex, strings.ToUpper(hex), "SHA256:" + hex, strings.Join(colons, ":"),
		"sha256 Fingerprint=" + strings.Join(colons, ":"), "  " + f.String() + "\n"} {
		got, err := ParseFingerprint(s)
		if err != nil || got != f {
			t.Errorf("ParseFingerprint(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "sha256:", hex[:62], hex + "00", "md5:" + hex, strings.Replace(hex, "0", "g", 1)} {
		if _, err := ParseFingerprint(s); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", s)
		}
	}
}

// TestPinnedClient: a client pinned to the server's certificate reaches
// it whatever its issuer; pinned to another, the handshake fails.
func TestPinnedClient(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"who are you"}`))
			return
		}
		w.Write([]byte(`{"url":"x"}`))
	}))
	defer ts.Close()
	fp := FingerprintOf(ts.Certificate().Raw)
	c, err := NewClient(ClientOptions{URL: ts.URL, Token: "tok", Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := c.Call(context.Background(), http.MethodGet, "/api/v1/status", nil, nil, &st); err != nil || st.URL != "x" {
		t.Fatalf("pinned call: %+v %v", st, err)
	}
	anon, _ := NewClient(ClientOptions{URL: ts.URL, Fingerprint: fp})
	err = anon.Call(context.Background(), http.MethodGet, "/", nil, nil, nil)
	if !IsStatus(err, http.StatusUnauthorized) || err.Error() != "who are you" {
		t.Fatalf("error answer: %v", err)
	}
	fp[0] ^= 1
	wrong, _ := NewClient(ClientOptions{URL: ts.URL, Token: "tok", Fingerprint: fp})
	if err := wrong.Call(context.Background(), http.MethodGet, "/", nil, nil, nil); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("wrong pin: %v", err)
	}
	unpinned, _ := NewClient(ClientOptions{URL: ts.URL, Token: "tok"})
	if err := unpinned.Call(context.Background(), http.MethodGet, "/", nil, nil, nil); err == nil {
		t.Fatal("a self-signed certificate passed the system roots")
	}
}
