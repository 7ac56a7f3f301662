package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// target is a test target with its expectation.
type target struct {
	data []byte
	want Want
}

func newTarget(size int) target {
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(size)})
	r.Read(data)
	sum := sha256.Sum256(data)
	return target{data: data, want: Want{Length: int64(size), SHA256: sum[:]}}
}

// rangeServer serves data with Range support and records each request's
// Range header.
type rangeServer struct {
	mu     sync.Mutex
	ranges []string
}

func (s *rangeServer) handler(data []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		s.mu.Unlock()
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}
}

func (s *rangeServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// cutOff sends the headers for all of data, then n bytes, then drops the
// connection.
func cutOff(data []byte, n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:n])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

func dstPath(t *testing.T) string { return filepath.Join(t.TempDir(), "target.bin") }

func wantFile(t *testing.T, path string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s: %d bytes, %v; want %d bytes", path, len(got), err, len(data))
	}
}

func wantAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists (%v)", path, err)
	}
}

func TestFileOK(t *testing.T) {
	tg := newTarget(3<<20 + 17)
	var rs rangeServer
	srv := serve(t, rs.handler(tg.data))
	dst := dstPath(t)
	var progress []int64
	want := tg.want
	want.Progress = func(n int64) { progress = append(progress, n) }
	if err := New(testOptions()).File(context.Background(), srv.URL+"/t", dst, want); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, tg.data)
	wantAbsent(t, dst+".part")
	if progress[len(progress)-1] != tg.want.Length {
		t.Fatalf("last progress %d", progress[len(progress)-1])
	}
	for i := 1; i < len(progress); i++ {
		if progress[i] < progress[i-1] {
			t.Fatalf("progress goes back: %v", progress)
		}
	}
	if got := rs.seen(); len(got) != 1 || got[0] != "" {
		t.Fatalf("requests %q", got)
	}
}

func TestFileEmptyTarget(t *testing.T) {
	tg := newTarget(0)
	dst := dstPath(t)
	if err := New(testOptions()).File(context.Background(), "http://127.0.0.1:1/never", dst, tg.want); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, nil)
}

func TestFileTampered(t *testing.T) {
	tg := newTarget(100_000)
	bad := bytes.Clone(tg.data)
	bad[50_000] ^= 1
	srv := serve(t, (&rangeServer{}).handler(bad))
	dst := dstPath(t)
	err := New(testOptions()).File(context.Background(), srv.URL+"/t", dst, tg.want)
	wantClass(t, err, failure.Verification)
	wantAbsent(t, dst)
	wantAbsent(t, dst+".part")
}

func TestFileWrongLength(t *testing.T) {
	tg := newTarget(100_000)
	chunked := func(data []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Write(data[:10])
			w.(http.Flusher).Flush() // no Content-Length
			w.Write(data[10:])
		}
	}
	longer := append(bytes.Clone(tg.data), 'x')
	tests := []struct {
		name     string
		h        http.HandlerFunc
		partKept int // bytes left in .part, -1 for none
	}{
		{"declared longer", (&rangeServer{}).handler(longer), -1},
		{"declared shorter", (&rangeServer{}).handler(tg.data[:99_999]), -1},
		{"sent longer", chunked(longer), -1},
		{"sent shorter", chunked(tg.data[:60_000]), 60_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, tc.h)
			dst := dstPath(t)
			err := New(testOptions()).File(context.Background(), srv.URL+"/t", dst, tg.want)
			wantClass(t, err, failure.Verification)
			wantAbsent(t, dst)
			if tc.partKept < 0 {
				wantAbsent(t, dst+".part")
			} else {
				wantFile(t, dst+".part", tg.data[:tc.partKept])
			}
		})
	}
	// The declared mismatch is rejected early, as go-tuf's length error.
	srv := serve(t, (&rangeServer{}).handler(longer))
	err := New(testOptions()).File(context.Background(), srv.URL+"/t", dstPath(t), tg.want)
	var le *metadata.ErrDownloadLengthMismatch
	if !errors.As(err, &le) {
		t.Fatalf("%v lacks ErrDownloadLengthMismatch", err)
	}
}

func TestFileResume(t *testing.T) {
	tg := newTarget(1 << 20)
	var rs rangeServer
	srv := serve(t, rs.handler(tg.data))
	dst := dstPath(t)
	if err := os.WriteFile(dst+".part", tg.data[:300_000], 0o644); err != nil {
		t.Fatal(err)
	}
	var first atomic.Int64
	first.Store(-1)
	want := tg.want
	want.Progress = func(n int64) { first.CompareAndSwap(-1, n) }
	if err := New(testOptions()).File(context.Background(), srv.URL+"/t", dst, want); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, tg.data)
	wantAbsent(t, dst+".part")
	if got := rs.seen(); len(got) != 1 || got[0] != "bytes=300000-" {
		t.Fatalf("requests %q", got)
	}
	if first.Load() != 300_000 {
		t.Fatalf("first progress %d", first.Load())
	}
}

func TestFileResumeFromAnotherSource(t *testing.T) {
	tg := newTarget(1 << 20)
	broken := serve(t, cutOff(tg.data, 400_000))
	var rs rangeServer
	good := serve(t, rs.handler(tg.data))
	dst := dstPath(t)
	f := New(testOptions())

	err := f.File(context.Background(), broken.URL+"/t", dst, tg.want)
	wantClass(t, err, failure.Unreachable)
	part, _ := os.ReadFile(dst + ".part")
	if len(part) == 0 || !bytes.Equal(part, tg.data[:len(part)]) {
		t.Fatalf("partial file: %d bytes", len(part))
	}
	if err := f.File(context.Background(), good.URL+"/t", dst, tg.want); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, tg.data)
	if got := rs.seen(); len(got) != 1 || got[0] != "bytes="+strconv.Itoa(len(part))+"-" {
		t.Fatalf("requests %q", got)
	}
}

func TestFileRangeIgnored(t *testing.T) {
	tg := newTarget(500_000)
	var requests atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write(tg.data) // a 200 whatever the Range
	})
	dst := dstPath(t)
	os.WriteFile(dst+".part", tg.data[:200_000], 0o644)
	if err := New(testOptions()).File(context.Background(), srv.URL+"/t", dst, tg.want); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, tg.data)
	if requests.Load() != 1 {
		t.Fatalf("%d requests", requests.Load())
	}
}

func TestFileRangeNotSatisfiable(t *testing.T) {
	tg := newTarget(500_000)
	var rs rangeServer
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" { // as if it held a shorter file
			rs.mu.Lock()
			rs.ranges = append(rs.ranges, r.Header.Get("Range"))
			rs.mu.Unlock()
			w.Header().Set("Content-Range", "bytes */100")
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		rs.handler(tg.data)(w, r)
	})
	dst := dstPath(t)
	os.WriteFile(dst+".part", tg.data[:200_000], 0o644)
	if err := New(testOptions()).File(context.Background(), srv.URL+"/t", dst, tg.want); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, tg.data)
	if got := rs.seen(); len(got) != 2 || got[0] != "bytes=200000-" || got[1] != "" {
		t.Fatalf("requests %q", got)
	}
}

func TestFileCorruptPartial(t *testing.T) {
	tg := newTarget(500_000)
	var rs rangeServer
	srv := serve(t, rs.handler(tg.data))
	dst := dstPath(t)
	bad := bytes.Clone(tg.data[:200_000])
	bad[7] ^= 0xff
	os.WriteFile(dst+".part", bad, 0o644)
	if err := New(testOptions()).File(context.Background(), srv.URL+"/t", dst, tg.want); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, tg.data)
	if got := rs.seen(); len(got) != 2 || got[0] != "bytes=200000-" || got[1] != "" {
		t.Fatalf("requests %q", got)
	}
}

func TestFileCompletePartial(t *testing.T) {
	tg := newTarget(100_000)
	var rs rangeServer
	srv := serve(t, rs.handler(tg.data))
	dst := dstPath(t)
	os.WriteFile(dst+".part", tg.data, 0o644)
	if err := New(testOptions()).File(context.Background(), srv.URL+"/t", dst, tg.want); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, tg.data)
	if got := rs.seen(); len(got) != 0 {
		t.Fatalf("requests %q", got)
	}
}

func TestFileBadPartialContent(t *testing.T) {
	tg := newTarget(100_000)
	tests := []struct {
		name, contentRange string
		class              failure.Class
	}{
		{"wrong start", "bytes 0-99999/100000", failure.HTTPError},
		{"malformed", "bytes=50000-", failure.HTTPError},
		{"wrong total", "bytes 50000-100000/100001", failure.Verification},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Range", tc.contentRange)
				w.WriteHeader(http.StatusPartialContent)
				w.Write(tg.data[50_000:])
			})
			dst := dstPath(t)
			os.WriteFile(dst+".part", tg.data[:50_000], 0o644)
			err := New(testOptions()).File(context.Background(), srv.URL+"/t", dst, tg.want)
			wantClass(t, err, tc.class)
			wantFile(t, dst+".part", tg.data[:50_000])
		})
	}
}

func TestFileStatus(t *testing.T) {
	tg := newTarget(1000)
	for code, class := range map[int]failure.Class{404: failure.NotFound, 500: failure.HTTPError, 206: failure.HTTPError} {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
		dst := dstPath(t)
		err := New(testOptions()).File(context.Background(), srv.URL+"/t", dst, tg.want)
		wantClass(t, err, class)
		wantAbsent(t, dst+".part")
	}
}

func TestFileTrickle(t *testing.T) {
	srv := serve(t, trickle(20*time.Millisecond))
	opts := testOptions()
	opts.MinRate = 10_000
	opts.RateWindow = 200 * time.Millisecond
	dst := dstPath(t)
	want := Want{Length: 1_000_000, SHA256: make([]byte, 32)}
	err := New(opts).File(context.Background(), srv.URL+"/t", dst, want)
	wantClass(t, err, failure.TooSlow)
	if fi, err := os.Stat(dst + ".part"); err != nil || fi.Size() == 0 {
		t.Fatalf("partial file not kept for a resume: %v", err)
	}
}

func TestFileCancelled(t *testing.T) {
	tg := newTarget(100_000)
	started := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		stall(tg.data[:1000], len(tg.data))(w, r)
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; time.Sleep(10 * time.Millisecond); cancel() }()
	dst := dstPath(t)
	err := New(testOptions()).File(ctx, srv.URL+"/t", dst, tg.want)
	wantClass(t, err, failure.Local)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v is not context.Canceled", err)
	}
	wantAbsent(t, dst)
}

func TestFileInvalidWant(t *testing.T) {
	err := New(testOptions()).File(context.Background(), "http://127.0.0.1:1/t", dstPath(t), Want{Length: 1, SHA256: []byte{1}})
	wantClass(t, err, failure.Local)
}

func TestParseContentRange(t *testing.T) {
	good := map[string][3]int64{
		"bytes 0-9/10":   {0, 9, 10},
		"bytes 5-9/*":    {5, 9, -1},
		"bytes 10-10/11": {10, 10, 11},
	}
	for s, w := range good {
		a, b, c, err := parseContentRange(s)
		if err != nil || [3]int64{a, b, c} != w {
			t.Errorf("%q: %d %d %d %v", s, a, b, c, err)
		}
	}
	for _, s := range []string{"", "bytes 9-5/10", "bytes 0-10/10", "bytes -1-5/10", "bytes 0-5", "items 0-5/6", "bytes a-5/6", "bytes 0-5/x"} {
		if _, _, _, err := parseContentRange(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
