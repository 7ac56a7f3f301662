// Package keyseal encrypts the site repository's online signing keys for
// the database that several management server processes share, under a
// key-encryption secret that each process is given as a file and that the
// database never holds (docs/server.md, Several server processes).
//
// A sealed value is "cks1" followed by a random 12-byte nonce and the
// AES-256-GCM ciphertext of the value, with the value's name as
// additional data, so a sealed key cannot be passed off under another
// role's name. The AES key is the SHA-256 of a fixed label and the
// secret.
package keyseal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// SecretSize is the size of a secret NewSecret makes, in bytes.
const SecretSize = 32

const (
	magic = "cks1"
	label = "cascade site key secret v1\x00"
)

// ErrOpen: the sealed value does not open with the secret (another
// secret, another name, or altered bytes).
var ErrOpen = errors.New("the key secret does not open it (another secret, or altered)")

// Secret is a key-encryption secret.
type Secret struct{ key [32]byte }

// NewSecret returns a new random secret and its file form (base64, one
// line).
func NewSecret() (*Secret, []byte, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, nil, fmt.Errorf("make a key secret: %w", err)
	}
	file := []byte(base64.StdEncoding.EncodeToString(b) + "\n")
	s, err := ParseSecret(file)
	return s, file, err
}

// ParseSecret reads a secret's file form: base64 of at least SecretSize
// bytes, surrounding white space ignored.
func ParseSecret(file []byte) (*Secret, error) {
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(file)))
	if err != nil {
		return nil, errors.New("read the key secret: not base64 (a file written by `cascade server init` or the first `cascade server run` on PostgreSQL)")
	}
	if len(raw) < SecretSize {
		return nil, fmt.Errorf("read the key secret: %d bytes, want at least %d", len(raw), SecretSize)
	}
	s := &Secret{}
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(raw)
	copy(s.key[:], h.Sum(nil))
	return s, nil
}

func (s *Secret) aead() (cipher.AEAD, error) {
	b, err := aes.NewCipher(s.key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Seal encrypts value under the secret, bound to name.
func (s *Secret) Seal(name string, value []byte) ([]byte, error) {
	a, err := s.aead()
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	out := append([]byte(magic), nonce...)
	return a.Seal(out, nonce, value, []byte(name)), nil
}

// Open decrypts what Seal returned for name; ErrOpen if it does not open.
func (s *Secret) Open(name string, sealed []byte) ([]byte, error) {
	a, err := s.aead()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if !bytes.HasPrefix(sealed, []byte(magic)) || len(sealed) < len(magic)+a.NonceSize() {
		return nil, fmt.Errorf("open %s: not a sealed value", name)
	}
	rest := sealed[len(magic):]
	out, err := a.Open(nil, rest[:a.NonceSize()], rest[a.NonceSize():], []byte(name))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, ErrOpen)
	}
	return out, nil
}
