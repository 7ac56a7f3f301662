package delta

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

// TestApplyVerified: the rebuilt file is checked against the signed
// length and hash; a delta that applies but rebuilds something else is
// ErrInvalid, naming both.
func TestApplyVerified(t *testing.T) {
	base := bytes.Repeat([]byte("record 0123456789abcdef\n"), 4096)
	target := append(bytes.Clone(base[:len(base)/2]), []byte("a new record\n")...)
	target = append(target, base[len(base)/2:]...)
	var d bytes.Buffer
	if err := Create(&d, base, target); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(target)
	var out bytes.Buffer
	if err := ApplyVerified(bytes.NewReader(base), bytes.NewReader(d.Bytes()), &out, int64(len(target)), sum[:]); err != nil || !bytes.Equal(out.Bytes(), target) {
		t.Fatalf("apply: %v (%d bytes, want %d)", err, out.Len(), len(target))
	}
	other := sha256.Sum256(base)
	err := ApplyVerified(bytes.NewReader(base), bytes.NewReader(d.Bytes()), &bytes.Buffer{}, int64(len(target)), other[:])
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "the rebuilt file has") {
		t.Fatalf("wrong signed hash: %v, want ErrInvalid naming both", err)
	}
	err = ApplyVerified(bytes.NewReader(base), bytes.NewReader(d.Bytes()), &bytes.Buffer{}, int64(len(target))+1, sum[:])
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong signed length: %v, want ErrInvalid", err)
	}
}
