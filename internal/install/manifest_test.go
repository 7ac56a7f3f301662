package install

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
)

func TestCheckPath(t *testing.T) {
	long := strings.Repeat("a", MaxComponentLen)
	deep := strings.Repeat("d/", MaxDepth-1) + "f"
	tests := []struct {
		path string
		why  string // "" means valid
	}{
		{"a", ""},
		{"engine/core.bin", ""},
		{".hidden/x", ""},
		{"dir with space/ünïcode.txt", ""},
		{long, ""},
		{deep, ""},
		{"", "empty"},
		{"/etc/passwd", "absolute"},
		{"../x", `".." component`},
		{"a/../b", `".." component`},
		{"a/..", `".." component`},
		{"./a", `"." component`},
		{"a/./b", `"." component`},
		{"a//b", "empty component"},
		{"a/", "empty component"},
		{`a\b`, "backslash"},
		{`..\..\x`, "backslash"},
		{"a\x00b", "control character"},
		{"a\nb", "control character"},
		{"a\x7fb", "control character"},
		{"a\u0085b", "control character"},
		{"a\xffb", "UTF-8"},
		{long + "a", "component longer"},
		{deep + "/g", "deeper"},
		{strings.Repeat("abcdefgh/", 114) + "xyz", "longer than 1024"},
	}
	for _, tt := range tests {
		err := CheckPath(tt.path)
		if tt.why == "" {
			if err != nil {
				t.Errorf("CheckPath(%q) = %v, want nil", tt.path, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("CheckPath(%q) = %v, want an ErrInvalidManifest saying %q", tt.path, err, tt.why)
		}
	}
}

func TestNormalizeRejects(t *testing.T) {
	h := sum([]byte("x"))
	f := func(p string) File { return File{Path: p, Length: 1, SHA256: h} }
	cat := category.Components
	tests := []struct {
		name string
		m    Manifest
		why  string
	}{
		{"wrong category", Manifest{Category: category.Programs}, `for category "programs"`},
		{"duplicate path", Manifest{Category: cat, Files: []File{f("a/b"), f("a/b")}}, "collide"},
		{"case duplicate", Manifest{Category: cat, Files: []File{f("Engine/A"), f("engine/a")}}, "collide"},
		{"file is a directory", Manifest{Category: cat, Files: []File{f("a"), f("a/b")}}, "also a directory"},
		{"file is a directory ignoring case", Manifest{Category: cat, Files: []File{f("A/b"), f("a")}}, "also a directory"},
		{"bad path", Manifest{Category: cat, Files: []File{f("../evil")}}, `".." component`},
		{"negative length", Manifest{Category: cat, Files: []File{{Path: "a", Length: -1, SHA256: h}}}, "negative length"},
		{"short hash", Manifest{Category: cat, Files: []File{{Path: "a", Length: 1, SHA256: h[:63]}}}, "64 hex"},
		{"non-hex hash", Manifest{Category: cat, Files: []File{{Path: "a", Length: 1, SHA256: "g" + h[1:]}}}, "64 hex"},
		{"empty item name", Manifest{Category: cat, Items: []Item{{Name: "", Version: "1"}}}, "item name"},
		{"item name with =", Manifest{Category: cat, Items: []Item{{Name: "a=b", Version: "1"}}}, "item name"},
		{"item name with space", Manifest{Category: cat, Items: []Item{{Name: "a b", Version: "1"}}}, "item name"},
		{"version with newline", Manifest{Category: cat, Items: []Item{{Name: "a", Version: "1\n"}}}, "version"},
		{"empty version", Manifest{Category: cat, Items: []Item{{Name: "a", Version: ""}}}, "version"},
		{"duplicate item", Manifest{Category: cat, Items: []Item{{"a", "1"}, {"a", "2"}}}, "listed twice"},
		{"too many files", Manifest{Category: cat, Files: make([]File, MaxFiles+1)}, "exceed the limits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := normalize(cat, tt.m)
			if err == nil || !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("normalize = %v, want an ErrInvalidManifest saying %q", err, tt.why)
			}
			if failure.ClassOf(err) != failure.Verification {
				t.Fatalf("class %q, want %q", failure.ClassOf(err), failure.Verification)
			}
		})
	}
}

func TestNormalizeCanonical(t *testing.T) {
	h := sum([]byte("x"))
	a := Manifest{Category: category.Components,
		Items: []Item{{"zeta", "2"}, {"alpha", "1.0"}},
		Files: []File{{"z/y", 1, strings.ToUpper(h)}, {"a", 1, h}}}
	b := Manifest{Category: category.Components,
		Items: []Item{{"alpha", "1.0"}, {"zeta", "2"}},
		Files: []File{{"a", 1, h}, {"z/y", 1, h}}}
	na, err := normalize(category.Components, a)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := normalize(category.Components, b)
	if err != nil {
		t.Fatal(err)
	}
	if !equalManifests(na, nb) {
		t.Fatalf("normalized manifests differ:\n%+v\n%+v", na, nb)
	}
	if na.Files[0].Path != "a" || na.Items[0].Name != "alpha" || na.Files[1].SHA256 != h {
		t.Fatalf("not sorted or not lowercased: %+v", na)
	}
	if a.Files[0].Path != "z/y" {
		t.Fatal("normalize modified its argument")
	}
	if got := itemList(na.Items); got != "alpha=1.0 zeta=2" {
		t.Fatalf("itemList = %q", got)
	}
}

func TestFileDigest(t *testing.T) {
	h := sum([]byte("x"))
	d, err := File{Path: "a", SHA256: h}.Digest()
	if err != nil || hex.EncodeToString(d) != h {
		t.Fatalf("Digest = %x, %v", d, err)
	}
	if _, err := (File{Path: "a", SHA256: "zz"}).Digest(); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("Digest of a bad hash: %v", err)
	}
}
