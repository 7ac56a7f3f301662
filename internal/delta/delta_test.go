package delta

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// makeDelta returns the delta from base to target with the params.
func makeDelta(t testing.TB, base, target []byte, p params) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := create(&buf, base, target, p); err != nil {
		t.Fatalf("create: %v", err)
	}
	return buf.Bytes()
}

// applyBytes applies d to base in memory.
func applyBytes(base, d []byte, maxResult int64) ([]byte, error) {
	var out bytes.Buffer
	err := Apply(bytes.NewReader(base), bytes.NewReader(d), &out, maxResult)
	return out.Bytes(), err
}

// roundTrip checks that the delta from base to target applies back to
// target, and returns its size.
func roundTrip(t *testing.T, base, target []byte, p params) int {
	t.Helper()
	d := makeDelta(t, base, target, p)
	got, err := applyBytes(base, d, int64(len(target)))
	if err != nil {
		t.Fatalf("apply (base %d, target %d bytes): %v", len(base), len(target), err)
	}
	if !bytes.Equal(got, target) {
		t.Fatalf("apply (base %d, target %d bytes): result differs (%d bytes)", len(base), len(target), len(got))
	}
	return len(d)
}

// records returns a pattern-like file: n records of 40..90 bytes with a
// length, a sequence number, a kind, a name from a small vocabulary and
// random signature bytes.
func records(rng *rand.Rand, first, n int) []byte {
	var b bytes.Buffer
	for i := range n {
		writeRecord(&b, rng, first+i)
	}
	return b.Bytes()
}

var families = []string{"Trojan.Win32.Agent", "Worm.Generic", "Adware.Toolbar", "Backdoor.Linux.Mirai", "PUA.Miner", "Ransom.Locky"}

func writeRecord(b *bytes.Buffer, rng *rand.Rand, seq int) {
	name := fmt.Sprintf("%s.%x", families[rng.IntN(len(families))], rng.IntN(1<<16))
	sig := make([]byte, 16+rng.IntN(24))
	for i := range sig {
		sig[i] = byte(rng.Uint32())
	}
	n := 2 + 4 + 1 + 1 + len(name) + len(sig)
	b.Write([]byte{byte(n), byte(n >> 8), byte(seq), byte(seq >> 8), byte(seq >> 16), byte(seq >> 24), byte(rng.IntN(4)), byte(len(name))})
	b.WriteString(name)
	b.Write(sig)
}

// randomBytes returns n bytes: random, text-like or runs, by kind.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	switch rng.IntN(3) {
	case 0:
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	case 1:
		const alphabet = "abcdefgh ijk\n"
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
	default:
		for i := 0; i < n; {
			run := min(n-i, 1+rng.IntN(40))
			c := byte(rng.IntN(3))
			for j := range run {
				b[i+j] = c
			}
			i += run
		}
	}
	return b
}

// edit returns a copy of b with k random edits: inserts, deletions,
// modifications, appends, truncations, moves.
func edit(rng *rand.Rand, b []byte, k int) []byte {
	out := append([]byte(nil), b...)
	for range k {
		at := 0
		if len(out) > 0 {
			at = rng.IntN(len(out) + 1)
		}
		n := 1 + rng.IntN(200)
		switch rng.IntN(6) {
		case 0: // insert
			out = append(out[:at], append(randomBytes(rng, n), out[at:]...)...)
		case 1: // delete
			out = append(out[:at], out[min(len(out), at+n):]...)
		case 2: // modify
			for j := at; j < min(len(out), at+n); j++ {
				out[j] ^= byte(1 + rng.IntN(255))
			}
		case 3: // append
			out = append(out, randomBytes(rng, n)...)
		case 4: // truncate the start or the end
			if rng.IntN(2) == 0 {
				out = out[min(len(out), n):]
			} else {
				out = out[:max(0, len(out)-n)]
			}
		case 5: // move a range elsewhere
			if len(out) > 0 {
				end := min(len(out), at+n)
				moved := append([]byte(nil), out[at:end]...)
				out = append(out[:at], out[end:]...)
				to := rng.IntN(len(out) + 1)
				out = append(out[:to], append(moved, out[to:]...)...)
			}
		}
	}
	return out
}

// TestRoundTripRandomEdits is the property: for random files and random
// edits, Apply(base, Create(base, target)) == target; with the default
// blocks and with the smallest, so that literals and instructions span
// many blocks.
func TestRoundTripRandomEdits(t *testing.T) {
	small := params{blockLimit: MinBlockLimit, maxIndexBits: 12}
	rng := rand.New(rand.NewPCG(1, 16))
	for i := range 300 {
		var base []byte
		switch i % 4 {
		case 0:
			base = randomBytes(rng, rng.IntN(50000))
		case 1:
			base = records(rng, 0, rng.IntN(2000))
		case 2:
			base = append(randomBytes(rng, rng.IntN(3000)), randomBytes(rng, rng.IntN(30000))...)
		default:
			base = randomBytes(rng, rng.IntN(40))
		}
		target := edit(rng, base, rng.IntN(20))
		p := defaultParams
		if i%2 == 1 {
			p = small
		}
		roundTrip(t, base, target, p)
	}
}

func TestRoundTripEdgeCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 16))
	file := records(rng, 0, 3000)
	other := randomBytes(rng, 100000)
	for _, c := range []struct {
		name         string
		base, target []byte
	}{
		{"both empty", nil, nil},
		{"empty base", nil, file},
		{"empty target", file, nil},
		{"identical", file, file},
		{"one byte", []byte{1}, []byte{2}},
		{"shorter than a key", []byte("abcdefgh"), []byte("abcdXfgh")},
		{"unrelated", file, other},
		{"appended", file[:len(file)/2], file},
		{"prefix", file, file[:len(file)/3]},
		{"repeated", file[:1000], bytes.Repeat(file[:1000], 300)},
		{"larger than a block", nil, randomBytes(rand.New(rand.NewPCG(3, 3)), 3*MinBlockLimit+17)},
	} {
		t.Run(c.name, func(t *testing.T) {
			roundTrip(t, c.base, c.target, defaultParams)
			roundTrip(t, c.base, c.target, params{blockLimit: MinBlockLimit, maxIndexBits: 10})
		})
	}
}

// TestDeltaIsSmall: a pattern-like file with 0.5% of its records
// deleted, modified or appended gives a delta about the size of the new
// bytes, and an identical file a delta of a few bytes.
func TestDeltaIsSmall(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 16))
	const n = 20000
	base := records(rng, 0, n)
	var target bytes.Buffer
	pos, changed := 0, 0
	for i := range n {
		l := int(base[pos]) | int(base[pos+1])<<8
		rec := base[pos : pos+l]
		pos += l
		switch r := rng.IntN(600); {
		case r == 0: // deleted
			changed += 8
		case r == 1: // signature rewritten
			m := append([]byte(nil), rec...)
			for j := len(m) - 16; j < len(m); j++ {
				m[j] = byte(rng.Uint32())
			}
			target.Write(m)
			changed += 16
		default:
			target.Write(rec)
		}
		_ = i
	}
	for i := range n / 600 {
		before := target.Len()
		writeRecord(&target, rng, n+i)
		changed += target.Len() - before
	}
	size := roundTrip(t, base, target.Bytes(), defaultParams)
	t.Logf("base %d bytes, target %d, changed about %d, delta %d", len(base), target.Len(), changed, size)
	if size > 2*changed {
		t.Errorf("delta of %d bytes for about %d changed bytes", size, changed)
	}
	if same := roundTrip(t, base, base, defaultParams); same > 64 {
		t.Errorf("delta between identical files is %d bytes", same)
	}
}

// TestDistantMoves: matches are found anywhere in the base, not only
// near the same offset (the index is of the whole base).
func TestDistantMoves(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 16))
	base := randomBytes(rng, 1)
	for base[0] = 0; len(base) < 4<<20; {
		base = append(base, byte(rng.Uint32()))
	}
	// The target is the base's second half, then its first.
	target := append(append([]byte(nil), base[len(base)/2:]...), base[:len(base)/2]...)
	if size := roundTrip(t, base, target, defaultParams); size > 200 {
		t.Errorf("swapping two halves of 4 MiB costs %d bytes", size)
	}
}

// TestErrorsMatchInvalid: every format error matches ErrInvalid and
// reads as one line.
func TestErrorsMatchInvalid(t *testing.T) {
	_, err := applyBytes(nil, []byte("CDL"), 10)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "truncated") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
}
