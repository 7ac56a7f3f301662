// Package delta is cascade's binary delta format: Create computes, from
// an old version of a file (the base) and a new one (the target), a delta
// that Apply turns back into the target given the base.
//
// A delta is a list of copy and insert instructions over the base, the
// idea behind rsync, xdelta and VCDIFF: copies name a range of the base,
// inserts carry new bytes. Create finds the copies with a sampled hash
// index of the whole base (so it finds matches at any distance, whatever
// the file size) and with "repeat" matches at the displacement of the
// previous copies (so a record changed in a few bytes costs those bytes);
// the instructions and the inserted bytes are compressed with zstd, in
// blocks of bounded size. docs/deltas.md explains the choice, with the
// measurements behind it.
//
// Apply streams: it reads the base through an io.ReaderAt, the delta once
// from an io.Reader, and writes the result as it is produced. Its memory is
// bounded by the block limit in the delta's header (at most MaxBlockLimit)
// whatever the size of the files. A hostile delta cannot make it allocate
// more, read outside the base, loop or write more than the length its
// header declares; the caller bounds that length with maxResult. Every way
// a delta can be wrong is an error matching ErrInvalid.
//
// Apply does not authenticate anything: the result carries a CRC-32C,
// which catches a wrong base or a damaged delta, not a forged one. The
// caller verifies the result's signed hash and length (and writes it to a
// temporary file it discards when Apply or the verification fails).
//
// # Format (version 1)
//
// All integers are little-endian; "uvarint" and "varint" are
// encoding/binary's.
//
//	header, 28 bytes:
//	  0  4  magic "CDLT"
//	  4  1  version, 1
//	  5  3  reserved, zero
//	  8  8  base length
//	 16  8  result length
//	 24  4  block limit: the most bytes of either stream of one block,
//	        stored or decoded (4 KiB to MaxBlockLimit)
//	blocks, each:
//	  1      tag 1
//	  stream instructions, then stream literals, each:
//	         method byte (0 stored, 1 zstd frame), decoded length (uvarint),
//	         stored length (uvarint); then both streams' stored bytes
//	end:
//	  1      tag 0
//	  4      CRC-32C (Castagnoli) of the result
//
// The instructions of a block are, until its stream ends, triples
//
//	literal length (uvarint), copy length (uvarint),
//	copy position (varint, only when the copy length is not zero)
//
// each writing the next literal-length bytes of the block's literals, then
// copy-length bytes of the base. The copy position is relative: the base
// offset of the copy minus (the end of the previous copy in the base, 0 at
// the start, plus the literal length), so a copy that resumes where the
// previous one would have continued is 0. Every instruction writes at
// least one byte; a block uses all its literals and writes at least one
// byte; the result is exactly the declared length; nothing follows the
// end.
package delta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the format version Create writes and Apply reads.
const Version = 1

// magic opens every delta.
const magic = "CDLT"

// headerLen is the size of the fixed header.
const headerLen = 28

// Limits of the format, enforced by Apply.
const (
	// MaxBlockLimit is the largest block limit Apply accepts: it bounds
	// Apply's memory (two streams stored and decoded, plus the zstd
	// decoder's window).
	MaxBlockLimit = 8 << 20
	// MinBlockLimit is the smallest block limit a delta may declare.
	MinBlockLimit = 4 << 10
	// DefaultBlockLimit is the block limit Create uses.
	DefaultBlockLimit = 4 << 20
)

// maxLen is the longest base or result a delta may declare (4 EiB), so
// that offsets never overflow.
const maxLen = 1 << 62

// Stream methods.
const (
	methodStored = 0
	methodZstd   = 1
)

// Block tags.
const (
	tagEnd   = 0
	tagBlock = 1
)

// ErrInvalid matches every error that says a delta is malformed, hostile,
// or not made for the base it is applied to.
var ErrInvalid = errors.New("invalid delta")

// invalidError is an ErrInvalid with its own message.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalid returns an error matching ErrInvalid.
func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Header is the fixed start of a delta.
type Header struct {
	Version    int
	BaseLen    int64
	ResultLen  int64
	BlockLimit int
}

// encode returns the header's bytes.
func (h Header) encode() []byte {
	b := make([]byte, headerLen)
	copy(b, magic)
	b[4] = byte(h.Version)
	binary.LittleEndian.PutUint64(b[8:], uint64(h.BaseLen))
	binary.LittleEndian.PutUint64(b[16:], uint64(h.ResultLen))
	binary.LittleEndian.PutUint32(b[24:], uint32(h.BlockLimit))
	return b
}

// ReadHeader reads and checks a delta's header.
func ReadHeader(r io.Reader) (Header, error) {
	var b [headerLen]byte
	if n, err := io.ReadFull(r, b[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return Header{}, invalid("delta is empty")
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Header{}, invalid("delta is truncated in its header")
		}
		return Header{}, fmt.Errorf("read delta header: %w", err)
	}
	if string(b[:4]) != magic {
		return Header{}, invalid("not a cascade delta (bad magic %q)", b[:4])
	}
	h := Header{
		Version:    int(b[4]),
		BaseLen:    int64(binary.LittleEndian.Uint64(b[8:])),
		ResultLen:  int64(binary.LittleEndian.Uint64(b[16:])),
		BlockLimit: int(binary.LittleEndian.Uint32(b[24:])),
	}
	switch {
	case h.Version != Version:
		return h, invalid("delta format version %d is not supported (this build reads version %d)", h.Version, Version)
	case b[5] != 0 || b[6] != 0 || b[7] != 0:
		return h, invalid("delta header has reserved bytes set")
	case h.BaseLen < 0 || h.BaseLen > maxLen:
		return h, invalid("delta declares an impossible base length")
	case h.ResultLen < 0 || h.ResultLen > maxLen:
		return h, invalid("delta declares an impossible result length")
	case h.BlockLimit < MinBlockLimit || h.BlockLimit > MaxBlockLimit:
		return h, invalid("delta block limit %d is outside %d..%d", h.BlockLimit, MinBlockLimit, MaxBlockLimit)
	}
	return h, nil
}
