package hostile_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/cascade-update/cascade/internal/delta"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/testkit/hostile"
)

// deltaFile is the file of the world that endpoints update by delta.
const deltaFile = "a.ptn"

// checkDelta runs a delta case: the endpoint holds pattern 2.0 and the
// source (hostile on deltas only, or honest with the endpoint's base
// altered) offers 3.0. The delta from 2.0 of a.ptn fails with the
// case's class, recorded as one attempt naming the delta; the full file
// follows from the same source, so the category is updated by that
// source; and what the endpoint trusts and installed is exactly what an
// endpoint that used the honest mirror holds (checked by sha256), with
// nothing left in the download cache but honest files.
func (w *world) checkDelta(t *testing.T, tc hostileCase, ref state) {
	src, _ := w.startHostile(t, tc)
	e := w.endpoint(t, nil, false)
	w.installFirst(t, e)
	if tc.alterBase {
		alterInstalled(t, e, "pattern/"+deltaFile)
	}
	rc := e.run(t, src.URL)
	if rc.Result != report.Updated || rc.Source != src.URL || rc.After["pattern"] != "3.0" {
		t.Fatalf("result %s from %q to %v, want updated to 3.0 by the same source (the full file): %+v", rc.Result, rc.Source, rc.After, rc)
	}
	want := index.DeltaPath("components", "pattern", "3.0", deltaFile, "2.0")
	if len(rc.Attempts) != 1 {
		t.Fatalf("attempts %+v, want the one failed delta", rc.Attempts)
	}
	a := rc.Attempts[0]
	if a.Source != src.URL || a.Class != tc.want || a.Delta != want {
		t.Fatalf("attempt %+v, want the delta %s from %s with class %s", a, want, src.URL, tc.want)
	}
	t.Logf("rejected: %s", a.Error)
	if full := int64(len(w.v3["pattern/"+deltaFile])); rc.Deltas != 0 || rc.Bytes < full {
		t.Errorf("%d files by delta, %d bytes downloaded; want %s in full (%d bytes)", rc.Deltas, rc.Bytes, deltaFile, full)
	}
	checkInstalled(t, e, w.v3)
	after := e.state(t)
	if err := sameTrusted("trusted metadata", after, ref); err != nil {
		t.Error(err)
	}
	if err := sameDigests("installed", after.installed, ref.installed); err != nil {
		t.Error(err)
	}
	w.checkCache(t, e)
	if tc.o.Behaviour != hostile.Honest && src.Misbehaved() == 0 {
		t.Error("the hostile source never misbehaved: the case tests nothing")
	}
}

// alterInstalled changes one byte of an installed file, as a user or a
// failing disk would.
func alterInstalled(t *testing.T, e *endpoint, rel string) {
	t.Helper()
	p := filepath.Join(e.dir, "installed", "components", "current", filepath.FromSlash(rel))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 1
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// deltaBody returns what a Replace case serves in place of the delta
// from 2.0 of a.ptn: "other-base", the honest, signed delta of the same
// file from 1.0 (a delta for another base); "bomb", a well-formed delta
// whose header declares a 1 TiB result and whose one block's literals
// are a zstd frame that expands 64 MiB of zeros from a few KB.
func (w *world) deltaBody(t *testing.T, kind string) []byte {
	t.Helper()
	switch kind {
	case "other-base":
		p := filepath.Join(w.trees["s2"], "vendor", "targets", "components", "pattern", "3.0", "*."+deltaFile+".from-1.0"+index.DeltaExt)
		m, err := filepath.Glob(p)
		if err != nil || len(m) != 1 {
			t.Fatalf("the delta from 1.0: %v %v", m, err)
		}
		b, err := os.ReadFile(m[0])
		if err != nil {
			t.Fatal(err)
		}
		return b
	case "bomb":
		return bomb(t, int64(len(w.v2["pattern/"+deltaFile])))
	}
	t.Fatalf("unknown body %q", kind)
	return nil
}

// bomb builds a decompression bomb in the delta format (package delta's
// documentation): a header for baseLen bytes of base and a 1 TiB result,
// one block whose instructions (stored) insert MaxBlockLimit literal
// bytes and whose literals are one zstd frame of 64 MiB of zeros.
func bomb(t *testing.T, baseLen int64) []byte {
	t.Helper()
	var frame bytes.Buffer
	enc, err := zstd.NewWriter(&frame, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range 64 {
		enc.Write(zeros)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	const (
		tagBlock     = 1
		methodStored = 0
		methodZstd   = 1
	)
	h := make([]byte, 28)
	copy(h, "CDLT")
	h[4] = delta.Version
	binary.LittleEndian.PutUint64(h[8:], uint64(baseLen))
	binary.LittleEndian.PutUint64(h[16:], 1<<40)
	binary.LittleEndian.PutUint32(h[24:], delta.MaxBlockLimit)
	instr := binary.AppendUvarint(nil, delta.MaxBlockLimit) // literal length
	instr = binary.AppendUvarint(instr, 0)                  // no copy
	b := append(h, tagBlock, methodStored)
	b = binary.AppendUvarint(b, uint64(len(instr)))
	b = binary.AppendUvarint(b, uint64(len(instr)))
	b = append(b, methodZstd)
	b = binary.AppendUvarint(b, delta.MaxBlockLimit)
	b = binary.AppendUvarint(b, uint64(frame.Len()))
	b = append(append(b, instr...), frame.Bytes()...)
	// It is a delta as far as its header goes: it is the signed hash and
	// length that keep it from being applied.
	if hd, err := delta.ReadHeader(bytes.NewReader(b)); err != nil || hd.ResultLen != 1<<40 {
		t.Fatalf("the bomb's header: %+v, %v", hd, err)
	}
	return b
}
