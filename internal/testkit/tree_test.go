package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyTree(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "a", "b"), 0o755))
	must(os.WriteFile(filepath.Join(src, "a", "b", "f"), []byte("file"), 0o640))
	must(os.WriteFile(filepath.Join(src, "top"), []byte("top"), 0o600))
	must(os.Symlink("a/b", filepath.Join(src, "current")))

	dst := filepath.Join(t.TempDir(), "copy")
	must(CopyTree(src, dst))
	for name, want := range map[string]string{"a/b/f": "file", "top": "top", "current/f": "file"} {
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dst, "a", "b", "f")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("a/b/f: %v, %v; want mode 0640", fi, err)
	}
	if link, err := os.Readlink(filepath.Join(dst, "current")); err != nil || link != "a/b" {
		t.Errorf("current: %q, %v; want a link to a/b", link, err)
	}
	// The copy is a snapshot: changing the source later leaves it alone.
	must(os.WriteFile(filepath.Join(src, "top"), []byte("changed"), 0o600))
	if b, _ := os.ReadFile(filepath.Join(dst, "top")); string(b) != "top" {
		t.Errorf("the copy followed the source: %q", b)
	}
	if err := CopyTree(filepath.Join(src, "missing"), dst); err == nil {
		t.Error("copying a missing tree succeeded")
	}
}
