package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// TestWriteNew: a new file is written with its permissions and the
// directory fsynced; an existing file or symbolic link is refused with
// fs.ErrExist and left as it was; no temporary file stays behind.
func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	synced := recordSyncs(t)
	name := filepath.Join(dir, "secret")
	if err := WriteNew(name, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(name); string(got) != "s3cret" {
		t.Fatalf("content %q", got)
	}
	if fi, err := os.Stat(name); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("stat: %v, %v", fi, err)
	}
	if got := synced(); !slices.Equal(got, []string{dir}) {
		t.Fatalf("directories fsynced: %q", got)
	}
	err := WriteNew(name, []byte("other"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("writing over an existing file: %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(name); string(got) != "s3cret" {
		t.Fatalf("the existing file changed: %q", got)
	}
	if runtime.GOOS != "windows" {
		target := filepath.Join(dir, "elsewhere")
		link := filepath.Join(dir, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if err := WriteNew(link, []byte("x"), 0o600); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("writing through a dangling symbolic link: %v, want fs.ErrExist", err)
		}
		if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the link's target was created: %v", err)
		}
	}
	for _, e := range entries(t, dir) {
		if IsTemp(e) {
			t.Fatalf("temporary file left: %s", e)
		}
	}
}
