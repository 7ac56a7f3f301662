package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/cascade-update/cascade/internal/delta"
	"github.com/cascade-update/cascade/internal/index"
)

// patternVersions returns n versions of a 256 KiB record file, each a few
// records away from the one before.
func patternVersions(seed uint64, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	cur := make([]byte, 256<<10)
	for i := range cur {
		cur[i] = byte(rng.IntN(256))
	}
	out := [][]byte{slices.Clone(cur)}
	for len(out) < n {
		for range 4 {
			off := rng.IntN(len(cur) - 64)
			for j := range 64 {
				cur[off+j] = byte(rng.IntN(256))
			}
		}
		out = append(out, slices.Clone(cur))
	}
	return out
}

func intp(n int) *int { return &n }

// publishedFile reads the content of a published target.
func publishedFile(t *testing.T, r *Repo, p string) []byte {
	t.Helper()
	tf := published(t, r, p)
	if tf == nil {
		t.Fatalf("%s is not published", p)
	}
	b, err := os.ReadFile(r.l.fromRel(targetRel(p, tf.Hashes["sha256"])))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPublishDeltas(t *testing.T) {
	r, _ := newTestRepo(t, Settings{Kind: Vendor, Bins: 8, Keep: 4, Deltas: intp(2), GCGenerations: -1, GCGrace: -1})
	vers := patternVersions(1, 6)
	var pruned []string
	for i, content := range vers {
		v := fmt.Sprint(i + 1)
		res := mustPublish(t, r, component("pattern", v, File{Name: "lpt.bin", Data: content}, data("tiny.txt", "t"+v)))
		pruned = append(pruned, res.Pruned...)
		if want := min(i, 2); len(res.Deltas) != want {
			t.Fatalf("version %s: %d deltas, want %d (tiny.txt gets none: %v)", v, len(res.Deltas), want, res.Deltas)
		}
		for j, d := range res.Deltas {
			base := fmt.Sprint(i - j) // newest first
			if d.Base != base || d.Path != index.DeltaPath("components", "pattern", v, "lpt.bin", base) {
				t.Errorf("delta %d of %s: %+v", j, v, d)
			}
			if d.Length >= int64(len(content))/2 || d.ResultLength != int64(len(content)) {
				t.Errorf("delta %s: %d bytes for a %d-byte file", d.Path, d.Length, d.ResultLength)
			}
			checkDeltaTarget(t, r, d.Path, vers[i-j-1], content)
		}
	}
	// Versions 1 and 2 are pruned, with the delta of version 2 (from 1).
	wantPruned := []string{
		index.ItemPath("components", "pattern", "1", "lpt.bin"), index.ItemPath("components", "pattern", "1", "tiny.txt"),
		index.ItemPath("components", "pattern", "2", "lpt.bin"), index.ItemPath("components", "pattern", "2", "tiny.txt"),
		index.DeltaPath("components", "pattern", "2", "lpt.bin", "1"),
	}
	slices.Sort(pruned)
	slices.Sort(wantPruned)
	if !slices.Equal(pruned, wantPruned) {
		t.Errorf("pruned %v, want %v", pruned, wantPruned)
	}
	st, err := r.Status(r.now())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range st.Deltas {
		got = append(got, d.Version+"<"+d.Base)
	}
	if want := []string{"3<1", "3<2", "4<2", "4<3", "5<3", "5<4", "6<4", "6<5"}; !slices.Equal(got, want) {
		t.Errorf("status lists deltas %v, want %v", got, want)
	}
	// The index lists no delta (older clients parse it strictly).
	for _, files := range readIndex(t, r, "components").Items["pattern"].KeptFiles {
		for _, f := range files {
			if index.IsDelta(f) {
				t.Errorf("index lists delta %s", f)
			}
		}
	}

	// The catalog rebuilt from the bins knows the deltas: the next prune
	// removes them too.
	if err := os.Remove(r.l.stateFile()); err != nil {
		t.Fatal(err)
	}
	res := mustPublish(t, r, component("pattern", "7", File{Name: "lpt.bin", Data: vers[0]}))
	want := []string{index.DeltaPath("components", "pattern", "3", "lpt.bin", "1"), index.DeltaPath("components", "pattern", "3", "lpt.bin", "2")}
	for _, p := range want {
		if !slices.Contains(res.Pruned, p) || published(t, r, p) != nil {
			t.Errorf("delta %s of pruned version 3 not pruned after a catalog rebuild: %v", p, res.Pruned)
		}
	}
}

// checkDeltaTarget checks a delta target's custom metadata and that it
// turns base into result.
func checkDeltaTarget(t *testing.T, r *Repo, p string, base, result []byte) {
	t.Helper()
	tf := published(t, r, p)
	d, err := index.DeltaOf(tf.Custom)
	if err != nil || d == nil {
		t.Fatalf("%s: delta metadata %v, %v", p, d, err)
	}
	bs, rs := sha256.Sum256(base), sha256.Sum256(result)
	if d.File != "lpt.bin" || d.BaseSHA256 != hex.EncodeToString(bs[:]) || d.BaseLength != int64(len(base)) ||
		d.ResultSHA256 != hex.EncodeToString(rs[:]) || d.ResultLength != int64(len(result)) {
		t.Errorf("%s: metadata %+v does not describe its base and result", p, *d)
	}
	var out bytes.Buffer
	if err := delta.Apply(bytes.NewReader(base), bytes.NewReader(publishedFile(t, r, p)), &out, d.ResultLength); err != nil {
		t.Fatalf("apply %s: %v", p, err)
	}
	if !bytes.Equal(out.Bytes(), result) {
		t.Errorf("%s does not rebuild its version", p)
	}
}

func TestPublishDeltasOffAndRatio(t *testing.T) {
	vers := patternVersions(2, 2)
	unrelated := patternVersions(3, 1)[0]
	for _, tt := range []struct {
		name   string
		s      Settings
		second []byte
		want   int
	}{
		{"default", Settings{Kind: Vendor, Bins: 8}, vers[1], 1},
		{"off", Settings{Kind: Vendor, Bins: 8, Deltas: intp(0)}, vers[1], 0},
		{"unrelated content", Settings{Kind: Vendor, Bins: 8}, unrelated, 0},
		{"ratio too small", Settings{Kind: Vendor, Bins: 8, DeltaMaxRatio: 0.0001}, vers[1], 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestRepo(t, tt.s)
			mustPublish(t, r, component("pattern", "1", File{Name: "lpt.bin", Data: vers[0]}))
			res := mustPublish(t, r, component("pattern", "2", File{Name: "lpt.bin", Data: tt.second}))
			if len(res.Deltas) != tt.want {
				t.Errorf("%d deltas, want %d", len(res.Deltas), tt.want)
			}
		})
	}
}

func TestPublishRefusesDeltaNames(t *testing.T) {
	r, _ := newTestRepo(t, smallSettings())
	_, err := r.Publish(t.Context(), component("pattern", "1", data("lpt.bin.from-0.cdlt", "x")))
	if !errors.Is(err, ErrInvalidItem) {
		t.Fatalf("publish of a file named like a delta: %v, want ErrInvalidItem", err)
	}
}

func TestDeltaSettings(t *testing.T) {
	for _, s := range []Settings{
		{Kind: Vendor, Deltas: intp(-1)},
		{Kind: Vendor, Deltas: intp(MaxDeltas + 1)},
		{Kind: Vendor, DeltaMaxRatio: 1.5},
		{Kind: Vendor, DeltaMaxRatio: -0.5},
	} {
		if err := s.withDefaults().validate(); !errors.Is(err, ErrInvalidSettings) {
			t.Errorf("settings %+v: %v, want ErrInvalidSettings", s, err)
		}
	}
	s := Settings{Kind: Vendor}.withDefaults()
	if s.DeltasFrom() != DefaultDeltas || s.DeltaMaxRatio != DefaultDeltaMaxRatio {
		t.Errorf("defaults: deltas %d, ratio %v", s.DeltasFrom(), s.DeltaMaxRatio)
	}
}
