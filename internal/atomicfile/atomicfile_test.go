package atomicfile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv switches the test binary into a helper process (see TestMain).
const helperEnv = "CASCADE_ATOMICFILE_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode, os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// entries returns the names in dir, sorted.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// recordSyncs replaces the directory fsync with one that records its
// argument (and still fsyncs), for the duration of the test.
func recordSyncs(t *testing.T) func() []string {
	t.Helper()
	var mu sync.Mutex
	var dirs []string
	old := syncDirHook
	syncDirHook = func(dir string) error {
		mu.Lock()
		dirs = append(dirs, dir)
		mu.Unlock()
		return old(dir)
	}
	t.Cleanup(func() { syncDirHook = old })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(dirs)
	}
}

func TestWriteFileReplacesAndSyncsDir(t *testing.T) {
	dir := t.TempDir()
	synced := recordSyncs(t)
	name := filepath.Join(dir, "state.json")
	if err := WriteFile(name, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(name, []byte("new content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(name); string(got) != "new content" {
		t.Fatalf("content %q", got)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"state.json"}) {
		t.Fatalf("directory holds %q, want only state.json", got)
	}
	if got := synced(); !slices.Equal(got, []string{dir, dir}) {
		t.Fatalf("directories fsynced: %q, want %q twice", got, dir)
	}
}

func TestPermissionsAsAsked(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no permission bits beyond read-only")
	}
	dir := t.TempDir()
	for _, perm := range []fs.FileMode{0o600, 0o644, 0o640, 0o444, 0o755} {
		name := filepath.Join(dir, "f"+strconv.FormatUint(uint64(perm), 8))
		if err := WriteFile(name, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), perm)
		}
	}
	// A replaced file takes the new mode, not the old file's.
	name := filepath.Join(dir, "secret")
	if err := WriteFile(name, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(name, []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(name); fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced file: mode %v, want 0600", fi.Mode().Perm())
	}
}

// failAfter is a reader that yields n bytes and then fails.
type failAfter struct{ n int }

var errSource = errors.New("source failed")

func (r *failAfter) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errSource
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'n'
	}
	r.n -= k
	return k, nil
}

func TestWriterErrorMidwayKeepsOld(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "big")
	old := bytes.Repeat([]byte("o"), 100<<10)
	if err := WriteFile(name, old, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(name, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := io.Copy(f, &failAfter{n: 300 << 10}); !errors.Is(err, errSource) {
		t.Fatalf("copy: %v, want the source's error", err)
	}
	if got, _ := os.ReadFile(name); !bytes.Equal(got, old) {
		t.Fatalf("target changed before Commit: %d bytes", len(got))
	}
	f.Abort()
	if got, _ := os.ReadFile(name); !bytes.Equal(got, old) {
		t.Fatalf("target changed by Abort: %d bytes", len(got))
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"big"}) {
		t.Fatalf("temporary file left: %q", got)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("Write after Abort succeeded")
	}
}

func TestFailedFsyncKeepsOldAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := WriteFile(name, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	errDisk := errors.New("I/O error")
	old := syncFileHook
	syncFileHook = func(*os.File) error { return errDisk }
	t.Cleanup(func() { syncFileHook = old })
	if err := WriteFile(name, []byte("new"), 0o644); !errors.Is(err, errDisk) {
		t.Fatalf("WriteFile: %v, want the fsync error", err)
	}
	if got, _ := os.ReadFile(name); string(got) != "old" {
		t.Fatalf("content %q, want old", got)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Fatalf("temporary file left: %q", got)
	}
}

func TestStreamingCommitAs(t *testing.T) {
	dir := t.TempDir()
	synced := recordSyncs(t)
	f, err := Create(filepath.Join(dir, "download"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), strings.NewReader("payload")); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(dir, fmt.Sprintf("%x.bin", h.Sum(nil)))
	if err := f.CommitAs(final); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(final); string(got) != "payload" {
		t.Fatalf("content %q", got)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{filepath.Base(final)}) {
		t.Fatalf("directory holds %q", got)
	}
	if got := synced(); !slices.Equal(got, []string{dir}) {
		t.Fatalf("directories fsynced: %q", got)
	}
	g, err := Create(filepath.Join(dir, "x"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.CommitAs(filepath.Join(t.TempDir(), "x")); err == nil {
		t.Fatal("CommitAs to another directory succeeded")
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Fatalf("temporary file left after a refused CommitAs: %q", got)
	}
}

func TestBatchSyncsEachDirOnce(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	synced := recordSyncs(t)
	var batch Batch
	for i := range 5 {
		if err := batch.WriteFile(filepath.Join(a, strconv.Itoa(i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := batch.Create(filepath.Join(b, "streamed"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("y"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, ".part"), []byte("z"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := batch.Rename(filepath.Join(b, ".part"), filepath.Join(b, "renamed")); err != nil {
		t.Fatal(err)
	}
	if got := synced(); len(got) != 0 {
		t.Fatalf("fsynced before Sync: %q", got)
	}
	if err := batch.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := synced(); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("fsynced %q, want %q and %q once each", got, a, b)
	}
	if err := batch.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := synced(); len(got) != 2 {
		t.Fatalf("second Sync fsynced again: %q", got)
	}
}

func TestRenameSyncsTargetDir(t *testing.T) {
	root := t.TempDir()
	from, to := filepath.Join(root, "from"), filepath.Join(root, "to")
	for _, d := range []string{from, to} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(to, "f"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(from, "f.part"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	synced := recordSyncs(t)
	if err := Rename(filepath.Join(from, "f.part"), filepath.Join(to, "f")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(to, "f")); string(got) != "new" {
		t.Fatalf("content %q", got)
	}
	if got := synced(); !slices.Equal(got, []string{to}) {
		t.Fatalf("fsynced %q, want %q", got, to)
	}
	if err := Rename(filepath.Join(from, "missing"), filepath.Join(to, "g")); err == nil {
		t.Fatal("Rename of a missing file succeeded")
	}
}

func TestSyncDirErrorIsReported(t *testing.T) {
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("SyncDir of a missing directory succeeded")
	}
}

func TestIsTemp(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, strings.Repeat("n", 250)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	got := entries(t, dir)
	if len(got) != 1 || !IsTemp(got[0]) {
		t.Fatalf("temporary file %q not recognized", got)
	}
	for _, name := range []string{"state.json", ".tmp-0123456789abcdef", "x.tmp-0123456789abcdef",
		".x.tmp-0123456789abcde", ".x.tmp-0123456789abcdeg", ".x.tmp-0123456789ABCDEF"} {
		if IsTemp(name) {
			t.Errorf("IsTemp(%q) = true", name)
		}
	}
	if !IsTemp(".x.tmp-0123456789abcdef") {
		t.Error("IsTemp of a temporary name = false")
	}
}

// TestFullDiskKeepsOld fills the disk midway: the helper process writes
// under a file size limit (RLIMIT_FSIZE) far below the new content, so the
// write fails with EFBIG as on a full disk.
func TestFullDiskKeepsOld(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs RLIMIT_FSIZE as on Linux")
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	old := bytes.Repeat([]byte("o"), 10<<10)
	if err := WriteFile(name, old, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := helperCmd(t, "fsize", name).CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "write failed:") {
		t.Fatalf("helper's write did not fail:\n%s", out)
	}
	if got, _ := os.ReadFile(name); !bytes.Equal(got, old) {
		t.Fatalf("target is %d bytes after the failed write, want the old %d", len(got), len(old))
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Fatalf("temporary file left: %q", got)
	}
}

// TestKillDuringWritesOldOrNew kills a process that rewrites a file in a
// loop, at varying moments: the file always holds one complete version.
func TestKillDuringWritesOldOrNew(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("needs SIGKILL")
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	rounds := 12
	if testing.Short() {
		rounds = 3
	}
	for i := range rounds {
		cmd := helperCmd(t, "loop", name)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the first completed write, then let it run a little
		// longer (a different moment each round) and kill it.
		buf := make([]byte, 1)
		if _, err := io.ReadFull(stdout, buf); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper: %v", err)
		}
		time.Sleep(time.Duration(i) * 3 * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := checkVersion(data); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
}

// version returns the content of version n: 1 MiB of one byte value with
// the version number first.
func version(n int) []byte {
	b := bytes.Repeat([]byte{byte('a' + n%26)}, 1<<20)
	copy(b, fmt.Sprintf("%08d\n", n))
	return b
}

func checkVersion(data []byte) error {
	if len(data) < 9 {
		return fmt.Errorf("file holds %d bytes", len(data))
	}
	n, err := strconv.Atoi(string(data[:8]))
	if err != nil {
		return fmt.Errorf("file starts %q", data[:9])
	}
	if !bytes.Equal(data, version(n)) {
		return fmt.Errorf("file is not a complete version %d (%d bytes)", n, len(data))
	}
	return nil
}

func helperCmd(t *testing.T, mode, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", name)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}
