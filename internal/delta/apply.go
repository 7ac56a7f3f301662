package delta

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/klauspost/compress/zstd"
)

// Buffer sizes of Apply.
const (
	// baseWindow is how much of the base Apply reads at once: copies
	// mostly read the base forwards, so one read serves many.
	baseWindow = 1 << 20
	// minRead is the least Apply reads of the base at once.
	minRead = 64 << 10
	// outBuffer buffers the writes to out.
	outBuffer = 256 << 10
)

// Apply writes to out the file that the delta turns base into, as it is
// produced, and reports how the delta is wrong with an error matching
// ErrInvalid. maxResult is the most bytes the caller accepts (the signed
// length of the result): a delta declaring more is rejected before
// anything is written, and Apply never writes more than the delta
// declares.
//
// Apply does not authenticate the delta or the base: a result with the
// right checksum may still be forged. The caller verifies the result's
// signed hash, and discards what Apply wrote when it fails. Memory is at
// most four times the header's block limit (two streams, stored and
// decoded) plus about 2 MiB of buffers and the zstd decoder: about 18 MiB
// for Create's deltas, at most about 36 MiB for any, whatever the sizes
// of the files.
func Apply(base io.ReaderAt, delta io.Reader, out io.Writer, maxResult int64) error {
	_, err := apply(base, delta, out, maxResult)
	return err
}

// apply is Apply, returning its state for the tests to inspect.
func apply(base io.ReaderAt, delta io.Reader, out io.Writer, maxResult int64) (*applier, error) {
	h, err := ReadHeader(delta)
	if err != nil {
		return nil, err
	}
	if h.ResultLen > maxResult {
		return nil, invalid("delta declares a result of %d bytes, more than the %d expected", h.ResultLen, maxResult)
	}
	if err := checkBaseLen(base, h.BaseLen); err != nil {
		return nil, err
	}
	a := &applier{
		h:    h,
		base: base,
		in:   bufio.NewReaderSize(delta, 64<<10),
		out:  bufio.NewWriterSize(out, outBuffer),
	}
	defer a.close()
	if err := a.run(); err != nil {
		return a, err
	}
	if err := a.out.Flush(); err != nil {
		return a, fmt.Errorf("write delta result: %w", err)
	}
	return a, nil
}

// checkBaseLen checks that base is exactly n bytes long.
func checkBaseLen(base io.ReaderAt, n int64) error {
	var b [1]byte
	if n > 0 {
		if _, err := base.ReadAt(b[:], n-1); err != nil {
			if errors.Is(err, io.EOF) {
				return invalid("base is shorter than the %d bytes the delta was made from", n)
			}
			return fmt.Errorf("read delta base: %w", err)
		}
	}
	switch k, err := base.ReadAt(b[:], n); {
	case k == 1:
		return invalid("base is longer than the %d bytes the delta was made from", n)
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("read delta base: %w", err)
	}
	return nil
}

// window is a piece of the base read into memory: base[off:off+len(buf)].
type window struct {
	buf  []byte
	off  int64
	used uint64
}

// applier is one run of Apply.
type applier struct {
	h       Header
	base    io.ReaderAt
	in      *bufio.Reader
	out     *bufio.Writer
	dec     *zstd.Decoder
	stored  [2][]byte
	decoded [2][]byte
	windows [2]window
	tick    uint64
	written int64
	prevEnd int64
	crc     uint32
}

// run applies the blocks and checks the end.
func (a *applier) run() error {
	for {
		tag, err := a.in.ReadByte()
		if err != nil {
			return a.readErr(err, "a block tag")
		}
		switch tag {
		case tagBlock:
			if err := a.block(); err != nil {
				return err
			}
		case tagEnd:
			return a.end()
		default:
			return invalid("delta has an unknown block tag %d", tag)
		}
	}
}

// decoder returns the zstd decoder, made on first use.
func (a *applier) decoder() (*zstd.Decoder, error) {
	if a.dec != nil {
		return a.dec, nil
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(a.h.BlockLimit)),
		zstd.WithDecoderMaxWindow(uint64(windowFor(a.h.BlockLimit))))
	if err != nil {
		return nil, fmt.Errorf("apply delta: %w", err)
	}
	a.dec = dec
	return dec, nil
}

// close releases the zstd decoder.
func (a *applier) close() {
	if a.dec != nil {
		a.dec.Close()
	}
}

// readErr turns a failed read of the delta into an error.
func (a *applier) readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("delta is truncated (in %s, after %d of %d result bytes)", what, a.written, a.h.ResultLen)
	}
	return fmt.Errorf("read delta: %w", err)
}

// end checks the trailer: length, checksum, nothing after.
func (a *applier) end() error {
	var sum [4]byte
	if _, err := io.ReadFull(a.in, sum[:]); err != nil {
		return a.readErr(err, "its checksum")
	}
	if a.written != a.h.ResultLen {
		return invalid("delta ends after %d of the %d result bytes it declares", a.written, a.h.ResultLen)
	}
	if got := binary.LittleEndian.Uint32(sum[:]); got != a.crc {
		return invalid("delta result fails its checksum: the base is not the one the delta was made from, or the delta is damaged")
	}
	if _, err := a.in.ReadByte(); err == nil {
		return invalid("delta has bytes after its end")
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("read delta: %w", err)
	}
	return nil
}

// block reads one block's streams and runs its instructions.
func (a *applier) block() error {
	type stream struct {
		method          byte
		decoded, stored uint64
	}
	var ss [2]stream
	names := [2]string{"instructions", "literals"}
	limit := uint64(a.h.BlockLimit)
	for k := range ss {
		m, err := a.in.ReadByte()
		if err != nil {
			return a.readErr(err, "a block header")
		}
		d, err := a.uvarint("a block header")
		if err != nil {
			return err
		}
		s, err := a.uvarint("a block header")
		if err != nil {
			return err
		}
		switch {
		case m != methodStored && m != methodZstd:
			return invalid("delta block has an unknown %s method %d", names[k], m)
		case d > limit || s > limit:
			return invalid("delta block's %s exceed the block limit of %d bytes", names[k], limit)
		case m == methodStored && d != s:
			return invalid("delta block's stored %s have two lengths", names[k])
		}
		ss[k] = stream{m, d, s}
	}
	var views [2][]byte
	for k, s := range ss {
		a.stored[k] = grow(a.stored[k], s.stored)
		buf := a.stored[k][:s.stored]
		if _, err := io.ReadFull(a.in, buf); err != nil {
			return a.readErr(err, "a block's "+names[k])
		}
		if s.method == methodStored {
			views[k] = buf
			continue
		}
		zd, err := a.decoder()
		if err != nil {
			return err
		}
		a.decoded[k] = grow(a.decoded[k], s.decoded)
		dec, err := zd.DecodeAll(buf, a.decoded[k][:0])
		switch {
		case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded):
			return invalid("delta block's %s decompress beyond the block limit", names[k])
		case err != nil:
			return invalid("delta block's %s do not decompress (damaged zstd data)", names[k])
		}
		if uint64(len(dec)) != s.decoded {
			return invalid("delta block's %s decompress to %d bytes, not the %d declared", names[k], len(dec), s.decoded)
		}
		a.decoded[k], views[k] = dec, dec
	}
	return a.run1(views[0], views[1])
}

// grow returns b with a capacity of at least n (n is at most the block
// limit).
func grow(b []byte, n uint64) []byte {
	if uint64(cap(b)) >= n {
		return b
	}
	return make([]byte, 0, n)
}

// uvarint reads an unsigned varint of a block header.
func (a *applier) uvarint(what string) (uint64, error) {
	var x uint64
	for i := range binary.MaxVarintLen64 {
		c, err := a.in.ReadByte()
		if err != nil {
			return 0, a.readErr(err, what)
		}
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			return x | uint64(c)<<(7*i), nil
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	return 0, invalid("delta has an oversized number in %s", what)
}

// run1 runs one block's instructions over its literals.
func (a *applier) run1(instr, lits []byte) error {
	start := a.written
	for len(instr) > 0 {
		litLen, n := binary.Uvarint(instr)
		if n <= 0 {
			return invalid("delta has a malformed instruction")
		}
		instr = instr[n:]
		copyLen, n := binary.Uvarint(instr)
		if n <= 0 {
			return invalid("delta has a malformed instruction")
		}
		instr = instr[n:]
		if litLen == 0 && copyLen == 0 {
			return invalid("delta has an empty instruction")
		}
		if litLen > uint64(len(lits)) {
			return invalid("delta inserts more bytes than its block carries")
		}
		room := uint64(a.h.ResultLen - a.written)
		if litLen > room || copyLen > room-litLen {
			return invalid("delta writes beyond the %d bytes it declares", a.h.ResultLen)
		}
		if err := a.write(lits[:litLen]); err != nil {
			return err
		}
		lits = lits[litLen:]
		if copyLen == 0 {
			continue
		}
		rel, n := binary.Varint(instr)
		if n <= 0 {
			return invalid("delta has a malformed instruction")
		}
		instr = instr[n:]
		// expected is at most maxLen plus a block; rel is any int64:
		// compare without overflowing.
		expected := a.prevEnd + int64(litLen)
		if (rel < 0 && -(rel+1) >= expected) || (rel > 0 && rel > math.MaxInt64-expected) {
			return invalid("delta copies outside the base")
		}
		pos := expected + rel
		if pos >= a.h.BaseLen || copyLen > uint64(a.h.BaseLen-pos) {
			return invalid("delta copies beyond the base's end")
		}
		if err := a.copyBase(pos, int64(copyLen)); err != nil {
			return err
		}
		a.prevEnd = pos + int64(copyLen)
	}
	if len(lits) != 0 {
		return invalid("delta block leaves %d inserted bytes unused", len(lits))
	}
	if a.written == start {
		return invalid("delta has a block that writes nothing")
	}
	return nil
}

// write writes result bytes.
func (a *applier) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := a.out.Write(p); err != nil {
		return fmt.Errorf("write delta result: %w", err)
	}
	a.crc = crc32.Update(a.crc, castagnoli, p)
	a.written += int64(len(p))
	return nil
}

// copyBase writes n bytes of the base from pos, through the windows.
func (a *applier) copyBase(pos, n int64) error {
	for n > 0 {
		w, err := a.windowAt(pos, n)
		if err != nil {
			return err
		}
		from := pos - w.off
		k := min(n, int64(len(w.buf))-from)
		if err := a.write(w.buf[from : from+k]); err != nil {
			return err
		}
		pos += k
		n -= k
	}
	return nil
}

// windowAt returns a window holding base[pos], reading the base into the
// one used least recently when none does: n bytes from pos, at least
// minRead and at most baseWindow. Two windows let a copy from elsewhere in
// the base come between the copies of a forward run without costing the
// run its window.
func (a *applier) windowAt(pos, n int64) (*window, error) {
	a.tick++
	for i := range a.windows {
		w := &a.windows[i]
		if pos >= w.off && pos < w.off+int64(len(w.buf)) {
			w.used = a.tick
			return w, nil
		}
	}
	w := &a.windows[0]
	if a.windows[1].used < w.used {
		w = &a.windows[1]
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, baseWindow)
	}
	k := min(max(n, minRead), baseWindow, a.h.BaseLen-pos)
	got, err := a.base.ReadAt(w.buf[:k], pos)
	if int64(got) < k {
		w.buf = w.buf[:0]
		if err == nil || errors.Is(err, io.EOF) {
			return nil, invalid("base is shorter than the %d bytes the delta was made from", a.h.BaseLen)
		}
		return nil, fmt.Errorf("read delta base: %w", err)
	}
	w.buf, w.off, w.used = w.buf[:k], pos, a.tick
	return w, nil
}
