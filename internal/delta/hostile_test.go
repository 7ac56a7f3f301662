package delta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// forge builds a delta by hand: a header, blocks as given, and the end
// with the CRC-32C of result.
func forge(h Header, result []byte, blocks ...[]byte) []byte {
	d := h.encode()
	for _, b := range blocks {
		d = append(d, b...)
	}
	d = append(d, tagEnd)
	return binary.LittleEndian.AppendUint32(d, crc32.Checksum(result, castagnoli))
}

// storedBlock is a block with both streams stored.
func storedBlock(instr, lits []byte) []byte {
	b := []byte{tagBlock}
	for _, s := range [][]byte{instr, lits} {
		b = append(b, methodStored)
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	return append(append(b, instr...), lits...)
}

// op encodes one instruction.
func op(lit, n uint64, rel int64) []byte {
	b := binary.AppendUvarint(nil, lit)
	b = binary.AppendUvarint(b, n)
	if n > 0 {
		b = binary.AppendVarint(b, rel)
	}
	return b
}

// capWriter fails once more than max bytes are written to it.
type capWriter struct {
	n, max int64
}

func (w *capWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.n > w.max {
		return 0, errors.New("written beyond the cap")
	}
	return len(p), nil
}

func hdr(baseLen, resultLen int64) Header {
	return Header{Version: Version, BaseLen: baseLen, ResultLen: resultLen, BlockLimit: MinBlockLimit}
}

// TestHostileDeltas: hand-made deltas, each wrong in one way, are
// rejected with an error that says what is wrong, before writing more
// than the declared length.
func TestHostileDeltas(t *testing.T) {
	base := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	bl := int64(len(base))
	good := forge(hdr(bl, 13), []byte("XY0123456789Z"), storedBlock(append(op(2, 10, -2), op(1, 0, 0)...), []byte("XYZ")))
	if got, err := applyBytes(base, good, 100); err != nil || string(got) != "XY0123456789Z" {
		t.Fatalf("the well-formed hand-made delta: %q, %v", got, err)
	}
	badVersion := hdr(bl, 1)
	badVersion.Version = 2
	for _, c := range []struct {
		name, want string
		delta      []byte
		maxResult  int64
	}{
		{"empty", "delta is empty", nil, 100},
		{"not a delta", "not a cascade delta", []byte("PK\x03\x04 this is a zip file, not a delta"), 100},
		{"newer version", "version 2 is not supported", badVersion.encode(), 100},
		{"huge block limit", "block limit", Header{Version: 1, BaseLen: bl, ResultLen: 1, BlockLimit: 1 << 30}.encode(), 100},
		{"more than expected", "more than the 100 expected", forge(hdr(bl, 1<<40), nil), 100},
		{"base too short", "base is shorter", forge(hdr(bl+1, 1), nil), 100},
		{"base too long", "base is longer", forge(hdr(bl-1, 1), nil), 100},
		{"copies beyond the end", "copies beyond the base's end", forge(hdr(bl, 40), nil, storedBlock(op(0, 40, 0), nil)), 100},
		{"copies before the start", "copies outside the base", forge(hdr(bl, 4), nil, storedBlock(op(0, 4, -1), nil)), 100},
		{"copies after the end", "copies beyond the base's end", forge(hdr(bl, 4), nil, storedBlock(op(0, 4, bl+1), nil)), 100},
		{"copies past the end after literals", "copies beyond the base's end", forge(hdr(bl, bl+11), nil, storedBlock(append(op(0, uint64(bl), 0), op(10, 1, -5)...), make([]byte, 10))), 100},
		{"position overflows", "copies outside the base", forge(hdr(bl, 5), nil, storedBlock(append(op(0, 1, 5), op(0, 4, -1<<63)...), nil)), 100},
		{"writes beyond its length", "writes beyond the 5 bytes it declares", forge(hdr(bl, 5), nil, storedBlock(op(0, 30, 0), nil)), 100},
		{"literals beyond its length", "writes beyond", forge(hdr(bl, 2), nil, storedBlock(op(3, 0, 0), []byte("abc"))), 100},
		{"ends early", "ends after 3 of the 5", forge(hdr(bl, 5), base[:3], storedBlock(op(0, 3, 0), nil)), 100},
		{"no end", "truncated", good[:len(good)-5], 100},
		{"cut in a block", "truncated", good[:headerLen+5], 100},
		{"cut in the checksum", "truncated", good[:len(good)-2], 100},
		{"wrong checksum", "fails its checksum", forge(hdr(bl, 3), []byte("xyz"), storedBlock(op(0, 3, 0), nil)), 100},
		{"trailing bytes", "bytes after its end", append(append([]byte(nil), good...), 0), 100},
		{"unknown tag", "unknown block tag 7", append(hdr(bl, 1).encode(), 7), 100},
		{"unknown method", "unknown instructions method 9", append(hdr(bl, 1).encode(), tagBlock, 9, 0, 0), 100},
		{"stored lengths differ", "two lengths", append(hdr(bl, 1).encode(), tagBlock, methodStored, 2, 3), 100},
		{"stream over the limit", "exceed the block limit", append(hdr(bl, 1).encode(), tagBlock, methodZstd, 0x80, 0x80, 0x80, 0x10, 1), 100},
		{"oversized number", "oversized number", append(hdr(bl, 1).encode(), tagBlock, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), 100},
		{"empty instruction", "empty instruction", forge(hdr(bl, 1), nil, storedBlock(op(0, 0, 0), nil)), 100},
		{"malformed instruction", "malformed instruction", forge(hdr(bl, 1), nil, storedBlock([]byte{0x80}, nil)), 100},
		{"inserts more than carried", "more bytes than its block carries", forge(hdr(bl, 5), nil, storedBlock(op(5, 0, 0), []byte("ab"))), 100},
		{"unused literals", "leaves 2 inserted bytes unused", forge(hdr(bl, 1), nil, storedBlock(op(1, 0, 0), []byte("abc"))), 100},
		{"block writes nothing", "block that writes nothing", forge(hdr(bl, 0), nil, storedBlock(nil, nil)), 100},
		{"not zstd", "do not decompress", append(hdr(bl, 1).encode(), tagBlock, methodZstd, 4, 4, methodStored, 0, 0, 'j', 'u', 'n', 'k'), 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			declared := int64(-1)
			if len(c.delta) >= headerLen {
				declared = int64(binary.LittleEndian.Uint64(c.delta[16:]))
			}
			w := &capWriter{max: 1 << 20}
			err := Apply(bytes.NewReader(base), bytes.NewReader(c.delta), w, c.maxResult)
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalid saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if w.n > max(declared, 0) {
				t.Errorf("wrote %d bytes, the delta declares %d", w.n, declared)
			}
		})
	}
}

// TestTruncatedAndTampered: every prefix of a real delta and every
// single-byte change of it either fails with ErrInvalid or gives exactly
// the target (a change the format cannot see, such as a copy moved to
// identical bytes); never a panic or a different result accepted.
func TestTruncatedAndTampered(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 16))
	base := records(rng, 0, 300)
	target := edit(rng, base, 8)
	d := makeDelta(t, base, target, params{blockLimit: MinBlockLimit, maxIndexBits: 12})
	for n := range len(d) {
		if _, err := applyBytes(base, d[:n], int64(len(target))); !errors.Is(err, ErrInvalid) {
			t.Fatalf("prefix of %d of %d bytes: err = %v", n, len(d), err)
		}
	}
	accepted := 0
	for i := range d {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			bad := append([]byte(nil), d...)
			bad[i] ^= x
			got, err := applyBytes(base, bad, int64(len(target)))
			if err == nil {
				accepted++
				if !bytes.Equal(got, target) {
					t.Fatalf("byte %d ^ %#x: a different result accepted", i, x)
				}
			} else if !errors.Is(err, ErrInvalid) {
				t.Fatalf("byte %d ^ %#x: err = %v", i, x, err)
			}
		}
	}
	t.Logf("%d of %d single-byte changes still give the target", accepted, 3*len(d))
}

// TestWrongBase: a delta applied to another base of the same length fails
// its checksum; to one of another length, at once.
func TestWrongBase(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 16))
	base := records(rng, 0, 2000)
	target := edit(rng, base, 10)
	d := makeDelta(t, base, target, defaultParams)
	other := append([]byte(nil), base...)
	other[len(other)/2] ^= 1
	w := &capWriter{max: int64(len(target))}
	err := Apply(bytes.NewReader(other), bytes.NewReader(d), w, int64(len(target)))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("altered base: err = %v", err)
	}
	w = &capWriter{max: int64(len(target))}
	err = Apply(bytes.NewReader(base[1:]), bytes.NewReader(d), w, int64(len(target)))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "base is shorter") || w.n != 0 {
		t.Fatalf("shorter base: err = %v, %d bytes written", err, w.n)
	}
}

// TestBomb: a zstd stream that expands far beyond what its block declares
// is stopped at the block limit, without allocating what it would expand
// to; a result longer than the caller accepts is refused before anything
// is written.
func TestBomb(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	bomb := enc.EncodeAll(make([]byte, 256<<20), nil) // 256 MiB of zeros
	enc.Close()
	instr := op(MinBlockLimit, 0, 0)
	h := Header{Version: Version, ResultLen: 1 << 30, BlockLimit: MaxBlockLimit}
	d := append(h.encode(), tagBlock, methodStored)
	d = binary.AppendUvarint(d, uint64(len(instr)))
	d = binary.AppendUvarint(d, uint64(len(instr)))
	d = append(d, methodZstd)
	d = binary.AppendUvarint(d, MinBlockLimit) // what the block declares
	d = binary.AppendUvarint(d, uint64(len(bomb)))
	d = append(append(d, instr...), bomb...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w := &capWriter{max: 1 << 30}
	err = Apply(bytes.NewReader(nil), bytes.NewReader(d), w, 1<<30)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "decompress") {
		t.Fatalf("zstd bomb (%d bytes): err = %v", len(bomb), err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("the bomb allocated %d MiB", grew>>20)
	}
	if w.n != 0 {
		t.Errorf("the bomb wrote %d bytes", w.n)
	}

	// A delta that repeats a copy of the whole base a million times is a
	// small file declaring a large result: the caller's limit stops it.
	base := bytes.Repeat([]byte("x"), 1<<20)
	var ops []byte
	for range 1000 {
		ops = append(ops, op(0, 1<<20, -(1<<20))...)
	}
	loop := forge(hdr(1<<20, 1<<40), nil, storedBlock(ops, nil))
	w = &capWriter{max: 1 << 30}
	err = Apply(bytes.NewReader(base), bytes.NewReader(loop), w, 64<<20)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "more than the") || w.n != 0 {
		t.Fatalf("copy loop: err = %v, %d bytes written", err, w.n)
	}
}

// TestApplyStopsOnWriteError: a failing writer stops Apply with its error
// (not ErrInvalid).
func TestApplyStopsOnWriteError(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 16))
	target := randomBytes(rng, 1<<20)
	d := makeDelta(t, nil, target, defaultParams)
	err := Apply(bytes.NewReader(nil), bytes.NewReader(d), &capWriter{max: 1000}, int64(len(target)))
	if err == nil || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "write delta result") {
		t.Fatalf("err = %v", err)
	}
	_, err = applyBytes(nil, d, int64(len(target)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadHeader(io.LimitReader(bytes.NewReader(d), headerLen)); err != nil {
		t.Fatal(err)
	}
}

// countingReaderAt counts what is read from a base.
type countingReaderAt struct {
	r            io.ReaderAt
	calls, bytes int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.calls++
	c.bytes += int64(len(p))
	return c.r.ReadAt(p, off)
}

// TestApplyBaseReads: short copies from elsewhere in the base, between
// the copies of a forward run (a common name in a new record, say), cost
// a small read each and leave the run's window alone. Before the second
// window each of them cost two reads of 1 MiB (applying 64 MiB took 7,208
// reads and 0.74 s).
func TestApplyBaseReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 16))
	base := randomBytes(rng, 4<<20)
	bl := int64(len(base))
	var ops, result []byte
	prevEnd, run := int64(0), int64(0)
	for range 1000 {
		ops = append(ops, op(0, 1000, run-prevEnd)...)
		result = append(result, base[run:run+1000]...)
		prevEnd, run = run+1000, run+1000
		far := bl - 1<<20 + rng.Int64N(1<<20-40)
		ops = append(ops, op(0, 40, far-prevEnd)...)
		result = append(result, base[far:far+40]...)
		prevEnd = far + 40
	}
	h := Header{Version: Version, BaseLen: bl, ResultLen: int64(len(result)), BlockLimit: MaxBlockLimit}
	d := forge(h, result, storedBlock(ops, nil))
	c := &countingReaderAt{r: bytes.NewReader(base)}
	var out bytes.Buffer
	if err := Apply(c, bytes.NewReader(d), &out, h.ResultLen); err != nil || !bytes.Equal(out.Bytes(), result) {
		t.Fatalf("apply: %v", err)
	}
	// The run needs about 1 MiB, each far copy at most minRead.
	if limit := int64(2<<20 + 1000*minRead); c.bytes > limit {
		t.Errorf("read %d bytes of the base in %d reads for a %d-byte result, want at most %d", c.bytes, c.calls, len(result), limit)
	}
}
