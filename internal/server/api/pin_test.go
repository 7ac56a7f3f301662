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

// TestPinnedClient: a client pinned to the server's key reaches it
// whatever its issuer, and so does one pinned to its certificate (the pin
// of earlier versions); pinned to another, the handshake fails with an
// error naming both fingerprints.
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
	key := KeyFingerprintOf(ts.Certificate())
	for _, fp := range []Fingerprint{key, CertFingerprintOf(ts.Certificate().Raw)} {
		c, err := NewClient(ClientOptions{URL: ts.URL, Token: "tok", Fingerprint: fp})
		if err != nil {
			t.Fatal(err)
		}
		var st Status
		if err := c.Call(context.Background(), http.MethodGet, "/api/v1/status", nil, nil, &st); err != nil || st.URL != "x" {
			t.Fatalf("pinned call (%s): %+v %v", fp, st, err)
		}
	}
	anon, _ := NewClient(ClientOptions{URL: ts.URL, Fingerprint: key})
	err := anon.Call(context.Background(), http.MethodGet, "/", nil, nil, nil)
	if !IsStatus(err, http.StatusUnauthorized) || err.Error() != "who are you" {
		t.Fatalf("error answer: %v", err)
	}
	wrongPin := key
	wrongPin[0] ^= 1
	wrong, _ := NewClient(ClientOptions{URL: ts.URL, Token: "tok", Fingerprint: wrongPin})
	err = wrong.Call(context.Background(), http.MethodGet, "/", nil, nil, nil)
	want := "the server's key fingerprint is " + key.String() + ", the pinned one is " + wrongPin.String()
	if !errors.Is(err, ErrFingerprint) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("wrong pin: %v\nwant it to say %q", err, want)
	}
	unpinned, _ := NewClient(ClientOptions{URL: ts.URL, Token: "tok"})
	err = unpinned.Call(context.Background(), http.MethodGet, "/", nil, nil, nil)
	if err == nil || errors.Is(err, ErrFingerprint) || !strings.Contains(err.Error(), "no key fingerprint is pinned: its key fingerprint is "+key.String()) {
		t.Fatalf("a self-signed certificate without a pin: %v", err)
	}
}

// TestPlainHTTPRefused: no client of the server sends a token, a
// credential or asks for trust roots over http://.
func TestPlainHTTPRefused(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8443/", "HTTP://cascade.example/"} {
		_, err := NewClient(ClientOptions{URL: u, Token: "tok"})
		if !errors.Is(err, ErrPlainHTTP) || strings.Contains(err.Error(), "\n") {
			t.Errorf("NewClient(%s): %v, want ErrPlainHTTP", u, err)
		}
	}
	for _, u := range []string{"", "ftp://x/", "https://", "127.0.0.1:8443"} {
		if _, err := NewClient(ClientOptions{URL: u}); err == nil {
			t.Errorf("NewClient(%q) accepted", u)
		}
	}
	if _, err := NewClient(ClientOptions{URL: "https://cascade.example:8443/"}); err != nil {
		t.Errorf("https refused: %v", err)
	}
}
