package keyseal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestSealOpen: a sealed value opens with its secret and name only, and
// altered bytes do not open.
func TestSealOpen(t *testing.T) {
	s, file, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseSecret(append([]byte("  "), file...))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal("site/keys/timestamp.pem", []byte("private"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("private")) {
		t.Fatal("the sealed value holds the plain text")
	}
	if got, err := again.Open("site/keys/timestamp.pem", sealed); err != nil || string(got) != "private" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := again.Open("site/keys/targets.pem", sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("open under another name: %v", err)
	}
	other, _, _ := NewSecret()
	if _, err := other.Open("site/keys/timestamp.pem", sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("open with another secret: %v", err)
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := s.Open("site/keys/timestamp.pem", bad); !errors.Is(err, ErrOpen) {
		t.Fatalf("open altered bytes: %v", err)
	}
	for _, f := range []string{"not base64!", "c2hvcnQ="} {
		if _, err := ParseSecret([]byte(f)); err == nil || strings.Contains(err.Error(), "\n") {
			t.Fatalf("ParseSecret(%q): %v", f, err)
		}
	}
}
