package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// RootSHA256 returns how cascade prints the hash of a trusted root
// file: "sha256:" and the lower-case hex SHA-256 of its bytes (the digits
// sha256sum prints). `cascade origin init` and `origin status` print the
// vendor root's, and enrollment checks the server's vendor root against
// it.
func RootSHA256(root []byte) string {
	sum := sha256.Sum256(root)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseRootSHA256 returns s in the form RootSHA256 prints, accepting it
// with or without "sha256:", in either case, or as sha256sum prints it
// (the digits, then the file name).
func ParseRootSHA256(s string) (string, error) {
	t := strings.TrimSpace(s)
	if len(t) >= 7 && strings.EqualFold(t[:7], "sha256:") {
		t = t[7:]
	}
	if f := strings.Fields(t); len(f) == 2 {
		t = f[0] // sha256sum's "<digits>  <file>"
	}
	t = strings.ToLower(t)
	if b, err := hex.DecodeString(t); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("root hash %q: want sha256: and 64 hex digits (cascade origin status prints it)", s)
	}
	return "sha256:" + t, nil
}
