package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Fingerprint identifies the server's TLS key: the SHA-256 of its
// certificate's public key (the DER SubjectPublicKeyInfo), which a
// renewed certificate keeps (`cascade server cert renew`). Earlier
// versions pinned the SHA-256 of the whole certificate; a pin of that
// form is still accepted (PinnedTLSConfig).
type Fingerprint [sha256.Size]byte

// KeyFingerprintOf returns the fingerprint of a certificate's public key.
func KeyFingerprintOf(cert *x509.Certificate) Fingerprint {
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}

// CertFingerprintOf returns the SHA-256 of a DER-encoded certificate: the
// pin of earlier versions, which a renewed certificate does not keep.
func CertFingerprintOf(der []byte) Fingerprint { return sha256.Sum256(der) }

// String returns the form the server prints and enrollment takes:
// "sha256:" and 64 lower-case hex digits.
func (f Fingerprint) String() string { return "sha256:" + hex.EncodeToString(f[:]) }

// IsZero reports whether f is unset.
func (f Fingerprint) IsZero() bool { return f == Fingerprint{} }

// ParseFingerprint accepts the form String returns, with or without the
// "sha256:" prefix, in either case, with or without ':' or ' ' between
// the bytes (the form openssl prints).
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
		return f, fmt.Errorf("parse fingerprint %q: want the SHA-256 of the server's key as 64 hex digits (cascade server status prints it)", s)
	}
	copy(f[:], b)
	return f, nil
}

// ErrFingerprint is the error of a TLS handshake whose server does not
// match the pinned fingerprint (a *PinError).
var ErrFingerprint = errors.New("the server does not match the pinned fingerprint")

// PinError says which key the server presented and which one was
// pinned. It is ErrFingerprint.
type PinError struct {
	// Got is the fingerprint of the server's key (zero: it presented no
	// certificate).
	Got    Fingerprint
	Pinned Fingerprint
	// PinnedSet, when it holds more than one, is every pin of a set
	// (CheckPins); Pinned is its first.
	PinnedSet []Fingerprint
}

func (e *PinError) Error() string {
	pinned := "the pinned key fingerprint is " + e.Pinned.String()
	if len(e.PinnedSet) > 1 {
		s := make([]string, len(e.PinnedSet))
		for i, p := range e.PinnedSet {
			s[i] = p.String()
		}
		pinned = fmt.Sprintf("the %d pinned ones are %s", len(s), strings.Join(s, ", "))
	}
	if e.Got.IsZero() {
		return fmt.Sprintf("the server presented no certificate; %s", pinned)
	}
	if len(e.PinnedSet) > 1 {
		return fmt.Sprintf("the server's key fingerprint is %s, %s (not a server of the site enrolled with, or a changed key)", e.Got, pinned)
	}
	return fmt.Sprintf("the server's key fingerprint is %s, the pinned one is %s (not the server enrolled with, or a changed key)", e.Got, e.Pinned)
}

// Is makes a PinError match ErrFingerprint.
func (e *PinError) Is(target error) bool { return target == ErrFingerprint }

// CheckPin checks a server's certificate chain against fp: the leaf's
// public key must have fingerprint fp, or (the pin of earlier versions)
// the leaf itself. Either hash commits to the key the server proved it
// holds in the handshake.
func CheckPin(fp Fingerprint, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return &PinError{Pinned: fp}
	}
	key, cert := KeyFingerprintOf(chain[0]), CertFingerprintOf(chain[0].Raw)
	if subtle.ConstantTimeCompare(key[:], fp[:]) == 1 || subtle.ConstantTimeCompare(cert[:], fp[:]) == 1 {
		return nil
	}
	return &PinError{Got: key, Pinned: fp}
}

// CheckPins checks a server's certificate chain against a set of pins,
// as CheckPin does against one, and returns the pin that matched: the
// pinned set of a site with several management servers, one pin per
// server key. An empty set matches nothing.
func CheckPins(pins []Fingerprint, chain []*x509.Certificate) (Fingerprint, error) {
	for _, fp := range pins {
		if CheckPin(fp, chain) == nil {
			return fp, nil
		}
	}
	pe := &PinError{PinnedSet: pins}
	if len(pins) > 0 {
		pe.Pinned = pins[0]
	}
	if len(chain) > 0 {
		pe.Got = KeyFingerprintOf(chain[0])
	}
	return Fingerprint{}, pe
}

// PinnedTLSConfigSet is PinnedTLSConfigFunc for a set of pins, read at
// every handshake (so that the set may grow while connections are made):
// it accepts a server that one of them matches (CheckPins) and calls
// seen, if not nil, with the key fingerprint of the server and the pin
// that matched it.
func PinnedTLSConfigSet(pins func() []Fingerprint, seen func(key, pin Fingerprint)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// As PinnedTLSConfigFunc: the pins replace the chain and host
		// name checks; the handshake proves the server holds the key.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			pin, err := CheckPins(pins(), cs.PeerCertificates)
			if err != nil {
				return err
			}
			if seen != nil {
				seen(KeyFingerprintOf(cs.PeerCertificates[0]), pin)
			}
			return nil
		},
	}
}

// PinnedTLSConfig returns a client TLS configuration that accepts exactly
// the server whose key has fingerprint fp (CheckPin), whatever its
// certificate's issuer, names or validity dates: the trust comes from the
// fingerprint, obtained out of band (the server prints it). Security
// caveat: anyone holding the server's private key can impersonate it;
// keep the key file 0600.
func PinnedTLSConfig(fp Fingerprint) *tls.Config { return PinnedTLSConfigFunc(fp, nil) }

// PinnedTLSConfigFunc is PinnedTLSConfig that also calls seen, if not
// nil, with the key fingerprint of every server it accepts: a pin of the
// certificate's form can so be replaced by the key's.
func PinnedTLSConfigFunc(fp Fingerprint, seen func(key Fingerprint)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain and host name checks are replaced by the pin below;
		// the handshake still proves the server holds the leaf's key.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := CheckPin(fp, cs.PeerCertificates); err != nil {
				return err
			}
			if seen != nil {
				seen(KeyFingerprintOf(cs.PeerCertificates[0]))
			}
			return nil
		},
	}
}

// describeTLSError rewrites an error of a request to the server whose
// cause is a certificate problem into one line that says what to do: a
// wrong pin names both fingerprints (the transport's wrapping dropped);
// a certificate no trusted authority signed, while nothing is pinned,
// names the key fingerprint to pin if it is the right server's.
func describeTLSError(err error) error {
	var pe *PinError
	if errors.As(err, &pe) {
		return pe
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) && ua.Cert != nil {
		return fmt.Errorf("the server's certificate is not signed by an authority this machine trusts, and no key fingerprint is pinned: "+
			"its key fingerprint is %s; if `cascade server status` on your server prints the same, pin it with --fingerprint (%w)",
			KeyFingerprintOf(ua.Cert), ua)
	}
	return err
}
