package delta

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"

	"github.com/klauspost/compress/zstd"
)

// params tune Create; tests use small block limits.
type params struct {
	blockLimit int
	// maxIndexBits bounds the base index to 1<<maxIndexBits slots of 4
	// bytes.
	maxIndexBits int
}

// defaultParams are Create's.
var defaultParams = params{blockLimit: DefaultBlockLimit, maxIndexBits: 24}

// Matching constants.
const (
	// keyLen is the number of bytes the index hashes: a match the index
	// finds is at least this long.
	keyLen = 16
	// repMin is the shortest repeat match (at the displacement of a
	// recent copy) worth an instruction.
	repMin = 6
	// farMin is the shortest match at a new displacement worth taking:
	// shorter ones (a common name in a new record, say) cost more in
	// instructions and base reads than zstd makes of the same bytes as
	// literals (measured with bench/delta: 32 gave the smallest pattern
	// and stripped-program deltas of 16, 20, 24, 32 and 48).
	farMin = 32
	// repGood is a repeat match long enough not to look in the index.
	repGood = 64
	// opMax is the most bytes one encoded instruction takes.
	opMax = 3 * binary.MaxVarintLen64
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxBase bounds the base Create accepts: the index holds positions in 32
// bits.
const maxBase = 1<<32 - 1

// Create writes to w a delta that turns base into target. The base must
// be smaller than 4 GiB.
//
// Memory: Create holds base and target (the caller's slices), an index of
// the base of at most 64 MiB (4 bytes per slot, at most 1<<24 slots; 8
// to 16 bytes per base byte for bases under 8 MiB), two block buffers of
// DefaultBlockLimit and a zstd encoder: about 100 MiB on top of the two
// files (bench/delta measured a peak RSS of 232 MiB for two 64 MiB files,
// 405 MiB for two 150 MiB files). Time is linear in the sizes.
func Create(w io.Writer, base, target []byte) error {
	return create(w, base, target, defaultParams)
}

func create(w io.Writer, base, target []byte, p params) error {
	if int64(len(base)) >= maxBase {
		return fmt.Errorf("create delta: a base of %d bytes is larger than the %d supported", len(base), int64(maxBase))
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(windowFor(p.blockLimit)),
		zstd.WithEncoderCRC(false),
		zstd.WithZeroFrames(true))
	if err != nil {
		return fmt.Errorf("create delta: %w", err)
	}
	defer enc.Close()
	e := &encoder{
		w:       w,
		zenc:    enc,
		base:    base,
		target:  target,
		limit:   p.blockLimit,
		instr:   make([]byte, 0, p.blockLimit),
		lits:    make([]byte, 0, p.blockLimit),
		reps:    [2]int{0, 0},
		crc:     crc32.Checksum(target, castagnoli),
		scratch: make([]byte, 0, p.blockLimit+p.blockLimit/64+64),
	}
	h := Header{Version: Version, BaseLen: int64(len(base)), ResultLen: int64(len(target)), BlockLimit: p.blockLimit}
	if _, err := w.Write(h.encode()); err != nil {
		return fmt.Errorf("write delta: %w", err)
	}
	idx := newIndex(base, p.maxIndexBits)
	if err := e.match(idx); err != nil {
		return err
	}
	if err := e.flush(); err != nil {
		return err
	}
	var end [5]byte
	end[0] = tagEnd
	binary.LittleEndian.PutUint32(end[1:], e.crc)
	if _, err := w.Write(end[:]); err != nil {
		return fmt.Errorf("write delta: %w", err)
	}
	return nil
}

// windowFor is the zstd window for blocks of limit bytes: the smallest
// power of two that holds one.
func windowFor(limit int) int {
	w := zstd.MinWindowSize
	for w < limit {
		w <<= 1
	}
	return w
}

// index maps hashes of keyLen bytes at every stride-th position of the
// base to the last such position (plus one; 0 is empty).
type index struct {
	table  []uint32
	shift  uint
	stride int
}

// newIndex indexes base with at most 1<<maxBits slots, filled at most half.
func newIndex(base []byte, maxBits int) *index {
	n := len(base) - keyLen + 1
	if n <= 0 {
		return &index{}
	}
	stride := 1
	if most := 1 << (maxBits - 1); n > most {
		stride = (n + most - 1) / most
	}
	positions := (n + stride - 1) / stride
	b := 10
	for 1<<b < 2*positions && b < maxBits {
		b++
	}
	idx := &index{table: make([]uint32, 1<<b), shift: uint(64 - b), stride: stride}
	for p := 0; p < n; p += stride {
		idx.table[hashKey(base, p)>>idx.shift] = uint32(p + 1)
	}
	return idx
}

// lookup returns the candidate base position for target[i:], or -1.
func (x *index) lookup(target []byte, i int) int {
	if x.table == nil || i+keyLen > len(target) {
		return -1
	}
	return int(x.table[hashKey(target, i)>>x.shift]) - 1
}

// hashKey hashes b[i:i+keyLen].
func hashKey(b []byte, i int) uint64 {
	a := binary.LittleEndian.Uint64(b[i:])
	c := binary.LittleEndian.Uint64(b[i+8:])
	return (a*0x9E3779B185EBCA87 ^ bits.RotateLeft64(c*0xC2B2AE3D27D4EB4F, 31)) * 0x165667B19E3779F9
}

// matchLen returns the length of the common prefix of a and b.
func matchLen(a, b []byte) int {
	n := 0
	for len(a)-n >= 8 && len(b)-n >= 8 {
		if x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:]); x != 0 {
			return n + bits.TrailingZeros64(x)/8
		}
		n += 8
	}
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// encoder builds the blocks of one delta.
type encoder struct {
	w            io.Writer
	zenc         *zstd.Encoder
	base, target []byte
	limit        int
	instr, lits  []byte
	scratch      []byte
	// prevEnd is the base offset after the last copy.
	prevEnd int
	// reps are the displacements (base offset minus target offset) of
	// the last two distinct copies.
	reps [2]int
	crc  uint32
}

// match walks the target, emitting literals and copies.
func (e *encoder) match(idx *index) error {
	base, t := e.base, e.target
	lit, i := 0, 0
	for i < len(t) {
		bestLen, bestPos, bestAt := 0, 0, 0
		for _, d := range e.reps {
			p := i + d
			if p < 0 || p >= len(base) {
				continue
			}
			if n := matchLen(t[i:], base[p:]); n >= repMin && n > bestLen {
				bestLen, bestPos, bestAt = n, p, i
			}
		}
		if bestLen < repGood {
			if p := idx.lookup(t, i); p >= 0 {
				if n := matchLen(t[i:], base[p:]); n >= keyLen {
					b := 0
					for i-b > lit && p-b > 0 && t[i-b-1] == base[p-b-1] {
						b++
					}
					// A new displacement costs a few bytes more than a
					// repeat: take it only when clearly longer.
					if n+b >= farMin && n+b > bestLen+4 {
						bestLen, bestPos, bestAt = n+b, p-b, i-b
					}
				}
			}
		}
		if bestLen == 0 {
			i++
			continue
		}
		// Extend a repeat match backwards too (into literals only).
		for bestAt > lit && bestPos > 0 && t[bestAt-1] == base[bestPos-1] {
			bestAt--
			bestPos--
			bestLen++
		}
		if err := e.emit(t[lit:bestAt], bestPos, bestLen); err != nil {
			return err
		}
		if d := bestPos - bestAt; d != e.reps[0] {
			e.reps[1], e.reps[0] = e.reps[0], d
		}
		i = bestAt + bestLen
		lit = i
	}
	return e.emit(t[lit:], 0, 0)
}

// emit adds an instruction: the literals, then a copy of n bytes at base
// offset pos (none when n is 0). Literals beyond a block's room go in
// instructions of their own, one block after another.
func (e *encoder) emit(lit []byte, pos, n int) error {
	for len(lit) > e.limit-len(e.lits) {
		if room := e.limit - len(e.lits); room > 0 && len(e.instr)+opMax <= e.limit {
			e.instr = binary.AppendUvarint(e.instr, uint64(room))
			e.instr = binary.AppendUvarint(e.instr, 0)
			e.lits = append(e.lits, lit[:room]...)
			lit = lit[room:]
		}
		if err := e.flush(); err != nil {
			return err
		}
	}
	if len(lit) == 0 && n == 0 {
		return nil
	}
	if len(e.instr)+opMax > e.limit {
		if err := e.flush(); err != nil {
			return err
		}
	}
	e.instr = binary.AppendUvarint(e.instr, uint64(len(lit)))
	e.instr = binary.AppendUvarint(e.instr, uint64(n))
	e.lits = append(e.lits, lit...)
	if n > 0 {
		e.instr = binary.AppendVarint(e.instr, int64(pos-(e.prevEnd+len(lit))))
		e.prevEnd = pos + n
	}
	return nil
}

// flush writes the pending block, if any.
func (e *encoder) flush() error {
	if len(e.instr) == 0 {
		return nil
	}
	var head []byte
	head = append(head, tagBlock)
	var bodies [2][]byte
	for k, s := range [2][]byte{e.instr, e.lits} {
		method, stored := byte(methodStored), s
		if len(s) > 0 {
			c := e.zenc.EncodeAll(s, e.scratch[:0])
			if len(c) < len(s) {
				method, stored = methodZstd, append([]byte(nil), c...)
			}
		}
		head = append(head, method)
		head = binary.AppendUvarint(head, uint64(len(s)))
		head = binary.AppendUvarint(head, uint64(len(stored)))
		bodies[k] = stored
	}
	for _, b := range [][]byte{head, bodies[0], bodies[1]} {
		if _, err := e.w.Write(b); err != nil {
			return fmt.Errorf("write delta: %w", err)
		}
	}
	e.instr, e.lits = e.instr[:0], e.lits[:0]
	return nil
}
