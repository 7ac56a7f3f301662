package delta

import (
	"bytes"
	"crypto/sha256"
	"io"
)

// ApplyVerified is Apply for a result whose signed length and SHA-256 the
// caller knows: it hashes what it writes to out and, when the delta
// applied but rebuilt something else, returns an error matching
// ErrInvalid that names both. The caller still discards what was written
// on any error (write out to a temporary file and commit it only on
// success).
func ApplyVerified(base io.ReaderAt, delta io.Reader, out io.Writer, length int64, sum []byte) error {
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(out, h)}
	if err := Apply(base, delta, cw, length); err != nil {
		return err
	}
	if got := h.Sum(nil); cw.n != length || !bytes.Equal(got, sum) {
		return invalid("the rebuilt file has %d bytes, sha256 %x; signed: %d bytes, sha256 %x", cw.n, got, length, sum)
	}
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
