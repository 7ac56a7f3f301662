package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"
)

// Hash is the SHA-256 of a secret (admin token, enrollment token, endpoint
// credential). The store keeps only hashes; a secret is shown once, when it
// is created.
type Hash [sha256.Size]byte

// HashSecret returns the hash under which the store keeps secret.
func HashSecret(secret string) Hash { return sha256.Sum256([]byte(secret)) }

// String returns the hash in lower-case hex (the form stored).
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero hash (no hash set).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses the hex form returned by Hash.String.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("parse hash %q: %w: want %d hex bytes", s, ErrInvalid, len(h))
	}
	copy(h[:], b)
	return h, nil
}

// secretBytes is the entropy of a secret: 256 bits.
const secretBytes = 32

// NewSecret returns a new random secret, prefix followed by 43 URL-safe
// characters (256 bits from crypto/rand), and its hash. The prefix (for
// example "cascade_admin_") lets a leaked secret be recognised; it may be
// empty.
func NewSecret(prefix string) (secret string, h Hash, err error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", Hash{}, fmt.Errorf("new secret: %w", err)
	}
	secret = prefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret), nil
}

// idEncoding renders IDs: lower-case base32hex without padding, whose
// alphabet is in ASCII order, so that IDs sort as their bytes do.
var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// newID returns a new ID with the given prefix ("ep" gives "ep_..."): 48
// bits of t in milliseconds, then 80 random bits. IDs made later sort
// later (like UUIDv7), which keeps the database's index inserts local;
// the random part makes them unique for any realistic number of records,
// and a collision would surface as ErrConflict rather than a silent merge.
func newID(prefix string, t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	// crypto/rand.Read never returns an error (it panics instead).
	_, _ = rand.Read(b[6:])
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}
