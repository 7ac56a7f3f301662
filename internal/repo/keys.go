package repo

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/atomicfile"
)

// binsRole names the key shared by every hash-bin delegated role, and is
// the prefix of the bins' role names.
const binsRole = "bins"

// onlineRoles are the roles whose keys publish and refresh use. The root
// key is only needed by Init and can be kept offline afterwards.
var onlineRoles = []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP, binsRole}

// signingKey is a private key together with its TUF public form.
type signingKey struct {
	private ed25519.PrivateKey
	public  *metadata.Key
	id      string
	signer  signature.Signer
}

func newSigningKey(priv ed25519.PrivateKey) (*signingKey, error) {
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("convert public key: %w", err)
	}
	id, err := pub.ID()
	if err != nil {
		return nil, fmt.Errorf("key id: %w", err)
	}
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	return &signingKey{private: priv, public: pub, id: id, signer: signer}, nil
}

func generateKey() (*signingKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return newSigningKey(priv)
}

// saveKey writes k as a PKCS#8 PEM file readable by its owner only.
func saveKey(name string, k *signingKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := atomicfile.WriteNew(name, data, 0o600); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}

// loadKey reads a key written by saveKey.
func loadKey(name string) (*signingKey, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	return parseKey(name, data)
}

// parseKey reads the PEM of a key written by saveKey; name says where it
// came from.
func parseKey(name string, data []byte) (*signingKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("read key %s: no PEM PRIVATE KEY block", name)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse key %s: %w", name, err)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse key %s: not an ed25519 key", name)
	}
	return newSigningKey(priv)
}

// loadOnlineKeys loads the keys of onlineRoles and checks each against the
// key IDs that the current root (or, for bins, the targets delegation)
// authorises, so that a mixed-up keys directory is caught before anything
// is signed.
func loadOnlineKeys(l layout, root *metadata.RootType, bins *metadata.SuccinctRoles, source func(string) ([]byte, error)) (map[string]*signingKey, error) {
	keys := map[string]*signingKey{}
	for _, role := range onlineRoles {
		var k *signingKey
		var err error
		if source == nil {
			k, err = loadKey(l.keyFile(role))
		} else {
			var pem []byte
			if pem, err = source(role); err == nil {
				k, err = parseKey(role+" key", pem)
			}
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("load %s key: %w (publishing needs it)", role, err)
		}
		if err != nil {
			return nil, err
		}
		var allowed []string
		if role == binsRole {
			allowed = bins.KeyIDs
		} else if r := root.Roles[role]; r != nil {
			allowed = r.KeyIDs
		}
		if !slices.Contains(allowed, k.id) {
			return nil, fmt.Errorf("load %s key: %s is not a key the repository's metadata authorises for %s",
				role, l.keyFile(role), role)
		}
		keys[role] = k
	}
	return keys, nil
}
