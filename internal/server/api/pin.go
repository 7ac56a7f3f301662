package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Fingerprint identifies a TLS certificate: the SHA-256 of its DER form.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the fingerprint of a DER-encoded certificate.
func FingerprintOf(der []byte) Fingerprint { return sha256.Sum256(der) }

// String returns the form the server prints and enrollment takes:
// "sha256:" and 64 lower-case hex digits.
func (f Fingerprint) String() string { return "sha256:" + hex.EncodeToString(f[:]) }

// IsZero reports whether f is unset.
func (f Fingerprint) IsZero() bool { return f == Fingerprint{} }

// ParseFingerprint accepts the form String returns, with or without the
// "sha256:" prefix, in either case, with or without ':' or ' ' between
// the bytes (the form openssl x509 -fingerprint prints).
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	t := strings.TrimSpace(s)
	if len(t) >= 7 && strings.EqualFold(t[:7], "sha256:") {
		t = t[7:]
	} else if len(t) >= 19 && strings.EqualFold(t[:19], "sha256 fingerprint=") {
		t = t[19:]
	}
	t = strings.NewReplacer(":", "", " ", "").Replace(t)
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != len(f) {
		return f, fmt.Errorf("parse fingerprint %q: want the SHA-256 of the certificate as 64 hex digits", s)
	}
	copy(f[:], b)
	return f, nil
}

// ErrFingerprint is the error of a TLS handshake whose certificate does
// not match the pinned fingerprint.
var ErrFingerprint = errors.New("server certificate does not match the pinned fingerprint")

// PinnedTLSConfig returns a client TLS configuration that accepts exactly
// the certificate with fingerprint fp, whatever its issuer, names or
// validity dates: the trust comes from the fingerprint, obtained out of
// band (the server prints it at start). Security caveat: anyone holding
// the server's private key can impersonate it; keep the key file 0600.
func PinnedTLSConfig(fp Fingerprint) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain and host name checks are replaced by the pin below.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrFingerprint
			}
			got := FingerprintOf(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], fp[:]) != 1 {
				return fmt.Errorf("%w: got %s", ErrFingerprint, got)
			}
			return nil
		},
	}
}
