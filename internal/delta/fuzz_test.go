package delta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzBase is the base every FuzzApply input is applied to.
func fuzzBase() []byte {
	return records(rand.New(rand.NewPCG(9, 16)), 0, 100)
}

// fuzzMaxResult is the caller's limit in FuzzApply.
const fuzzMaxResult = 1 << 20

// FuzzApply feeds the decoder arbitrary deltas: it must not panic, must
// keep its buffers within the block limit, must write no more than the
// delta declares and the caller accepts, and on success must have written
// exactly the declared length. The seeds (testdata/fuzz/FuzzApply, written
// by TestFuzzSeeds) are real deltas against fuzzBase, made with small
// blocks so that they span several, and hand-made hostile ones.
func FuzzApply(f *testing.F) {
	base := fuzzBase()
	for _, d := range fuzzSeeds() {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		w := &capWriter{max: fuzzMaxResult}
		a, err := apply(bytes.NewReader(base), bytes.NewReader(d), w, fuzzMaxResult)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("an error other than ErrInvalid: %v", err)
		}
		if a == nil {
			if w.n != 0 {
				t.Fatalf("wrote %d bytes before accepting the header", w.n)
			}
			return
		}
		if w.n > a.h.ResultLen {
			t.Fatalf("wrote %d bytes, the delta declares %d", w.n, a.h.ResultLen)
		}
		if err == nil && w.n != a.h.ResultLen {
			t.Fatalf("accepted after writing %d of %d bytes", w.n, a.h.ResultLen)
		}
		for k := range a.stored {
			if cap(a.stored[k]) > a.h.BlockLimit || cap(a.decoded[k]) > a.h.BlockLimit {
				t.Fatalf("buffers of %d and %d bytes, the block limit is %d", cap(a.stored[k]), cap(a.decoded[k]), a.h.BlockLimit)
			}
		}
	})
}

// fuzzSeeds are FuzzApply's seeds.
func fuzzSeeds() [][]byte {
	rng := rand.New(rand.NewPCG(10, 16))
	base := fuzzBase()
	small := params{blockLimit: MinBlockLimit, maxIndexBits: 12}
	var seeds [][]byte
	for _, target := range [][]byte{
		edit(rng, base, 5),
		edit(rng, base, 30),
		base,
		nil,
		randomBytes(rng, 9000),
		append(append([]byte(nil), base[len(base)/2:]...), base[:len(base)/2]...),
	} {
		var buf bytes.Buffer
		if err := create(&buf, base, target, small); err != nil {
			panic(err)
		}
		seeds = append(seeds, buf.Bytes())
	}
	bl := int64(len(base))
	seeds = append(seeds,
		forge(hdr(bl, 40), nil, storedBlock(op(0, 40, bl-20), nil)),
		forge(hdr(bl, 1<<19), nil, storedBlock(bytes.Repeat(op(0, 1<<10, -(1<<10)), 512), nil)),
		append(hdr(bl, 1).encode(), tagBlock, methodZstd, 0xff, 0xff, 0x03, 4, 'j', 'u', 'n', 'k'),
		binary.LittleEndian.AppendUint32(append(hdr(bl, 0).encode(), tagEnd), 0),
	)
	return seeds
}

// TestFuzzSeeds checks that the committed seed corpus holds the real
// deltas (seeds 0 to 5) as deltas that apply to fuzzBase, so that a change
// of the format does not leave the fuzzer starting from junk. With
// CASCADE_WRITE_FUZZ_SEEDS=1 it first rewrites the corpus from fuzzSeeds.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzApply")
	seeds := fuzzSeeds()
	if os.Getenv("CASCADE_WRITE_FUZZ_SEEDS") == "1" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, d := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", d)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := fuzzBase()
	for i := range 6 {
		name := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "go test fuzz v1\n[]byte(")
		if !ok || !strings.HasSuffix(q, ")") {
			t.Fatalf("%s: not a fuzz corpus file", name)
		}
		d, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := applyBytes(base, []byte(d), fuzzMaxResult); err != nil {
			t.Errorf("%s no longer applies (CASCADE_WRITE_FUZZ_SEEDS=1 go test -run TestFuzzSeeds ./internal/delta rewrites the corpus): %v", name, err)
		}
	}
}
