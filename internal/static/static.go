// Package static serves a repository source tree (ARCHITECTURE.md, "The
// source tree") from disk over HTTP. The origin (`cascade origin serve`),
// update agents and the server all serve their trees with it, so every
// source answers alike.
//
// What it guarantees:
//
//   - No request reaches outside the tree: files are opened through an
//     os.Root (a symlink pointing outside is refused like a missing file),
//     and request paths with a "." or ".." segment, a segment starting
//     with a dot, an empty segment (so also "//abs/path"), a backslash, a
//     colon, a NUL or other control character, or a "%" left after the
//     URL decoding that net/http does (double-encoded traversal such as
//     %252e%252e) are refused with 400.
//   - Only regular files are served: directories (no listings), devices
//     and FIFOs answer 404. Only GET and HEAD are allowed (405 otherwise).
//   - Content-Type is application/json for .json files and
//     application/octet-stream otherwise, with nosniff.
//   - Consistent-snapshot files, which never change once published —
//     versioned metadata (N.<role>.json) and hash-prefixed targets
//     (<64 hex digits>.<name>) — are sent with
//     "Cache-Control: public, max-age=31536000, immutable" and a strong
//     ETag made of their size and modification time.
//   - Every other file (timestamp.json above all) is sent with a short,
//     configurable max-age and a strong ETag that is a hash of its content
//     (when not larger than Options.ContentHashLimit), so a conditional
//     GET is answered 304 whenever the content is unchanged, across
//     restarts and across agents holding the same file.
//   - Last-Modified, If-None-Match / If-Modified-Since (304), Range and
//     If-Range come from http.ServeContent, which is given the *os.File
//     itself so that large files go out through sendfile.
package static

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Handler. The zero value is usable.
type Options struct {
	// MutableMaxAge is the Cache-Control max-age of the files that may
	// change in place: timestamp.json and every other file that is neither
	// versioned metadata nor a hash-prefixed target. Zero (or less than a
	// second) sends "no-cache": caches must revalidate on every use, which
	// a 304 makes cheap. Caveat: a long max-age lets caches in front of
	// this server hide a new timestamp from clients for that long.
	MutableMaxAge time.Duration
	// ContentHashLimit is the largest mutable file whose ETag is a hash
	// of its content (default 1 MiB); larger ones get a size and
	// modification time ETag.
	ContentHashLimit int64
	// Logger receives unexpected errors (default: discard).
	Logger *slog.Logger
}

// ImmutableCacheControl is the Cache-Control of consistent-snapshot files.
const ImmutableCacheControl = "public, max-age=31536000, immutable"

// Handler serves the files under one directory. It is safe for concurrent
// use. Close it when done.
type Handler struct {
	root         *os.Root
	mutableCache string
	hashLimit    int64
	log          *slog.Logger

	mu    sync.Mutex
	etags map[string]etagEntry // content ETags of mutable files, by name
}

// etagEntry is a content ETag and the file state it was computed for.
type etagEntry struct {
	fi   fs.FileInfo
	etag string
}

// New returns a Handler serving the tree under dir.
func New(dir string, opts Options) (*Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("static: open tree: %w", err)
	}
	h := &Handler{
		root:         root,
		mutableCache: "no-cache",
		hashLimit:    opts.ContentHashLimit,
		log:          opts.Logger,
		etags:        map[string]etagEntry{},
	}
	if s := int64(opts.MutableMaxAge / time.Second); s > 0 {
		h.mutableCache = "public, max-age=" + strconv.FormatInt(s, 10)
	}
	if h.hashLimit <= 0 {
		h.hashLimit = 1 << 20
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// Close releases the tree's directory handle. Requests in flight finish;
// later ones fail with 404.
func (h *Handler) Close() error { return h.root.Close() }

// ServeHTTP serves one file of the tree.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed)
		return
	}
	name, status := cleanPath(r.URL.Path)
	if status != http.StatusOK {
		httpError(w, status)
		return
	}
	f, fi, err := h.open(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errNotRegular) {
			h.log.Warn("static: open", "path", name, "err", err)
		}
		httpError(w, http.StatusNotFound)
		return
	}
	defer f.Close()
	hdr := w.Header()
	hdr.Set("Content-Type", contentType(name))
	hdr.Set("X-Content-Type-Options", "nosniff")
	if immutable(name) {
		hdr.Set("Cache-Control", ImmutableCacheControl)
		hdr.Set("ETag", statETag(fi))
	} else {
		etag, err := h.contentETag(name, f, fi)
		if err != nil {
			h.log.Warn("static: hash", "path", name, "err", err)
			httpError(w, http.StatusInternalServerError)
			return
		}
		hdr.Set("Cache-Control", h.mutableCache)
		hdr.Set("ETag", etag)
	}
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func httpError(w http.ResponseWriter, code int) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(code), code)
}

var errNotRegular = errors.New("not a regular file")

// open opens name in the tree and checks that it is a regular file.
func (h *Handler) open(name string) (*os.File, fs.FileInfo, error) {
	f, err := h.root.OpenFile(name, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errNotRegular
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// cleanPath turns a request path into a name inside the tree. It returns
// 400 for a path that tries anything unusual and 404 for the root or a
// path ending in a slash (a directory).
func cleanPath(p string) (string, int) {
	name, ok := strings.CutPrefix(p, "/")
	if !ok {
		return "", http.StatusBadRequest
	}
	if name == "" || strings.HasSuffix(name, "/") {
		return "", http.StatusNotFound
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg[0] == '.' {
			return "", http.StatusBadRequest
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; c < 0x20 || c == 0x7f || c == '\\' || c == '%' || c == ':' {
				return "", http.StatusBadRequest
			}
		}
	}
	return name, http.StatusOK
}

func contentType(name string) string {
	if strings.HasSuffix(name, ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}

// immutable reports whether name is a consistent-snapshot file: versioned
// metadata "N.<role>.json" (N a positive decimal without leading zero) or
// a hash-prefixed target "<64 lowercase hex>.<name>".
func immutable(name string) bool {
	base := path.Base(name)
	prefix, rest, ok := strings.Cut(base, ".")
	if !ok || rest == "" {
		return false
	}
	if len(prefix) == 64 && isLowerHex(prefix) {
		return true
	}
	role, ok := strings.CutSuffix(rest, ".json")
	return ok && role != "" && prefix[0] != '0' && isDigits(prefix)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// statETag is a strong ETag from size and modification time, for files
// that never change once written.
func statETag(fi fs.FileInfo) string {
	return `"` + strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16) + `"`
}

// contentETag returns the ETag of a mutable file: a hash of its content,
// cached for as long as the file (same inode, size and modification time)
// is unchanged. Files larger than the limit get a statETag.
func (h *Handler) contentETag(name string, f *os.File, fi fs.FileInfo) (string, error) {
	if fi.Size() > h.hashLimit {
		return statETag(fi), nil
	}
	h.mu.Lock()
	e, ok := h.etags[name]
	h.mu.Unlock()
	if ok && os.SameFile(e.fi, fi) && e.fi.ModTime().Equal(fi.ModTime()) && e.fi.Size() == fi.Size() {
		return e.etag, nil
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	etag := `"` + hex.EncodeToString(sum.Sum(nil)[:16]) + `"`
	h.mu.Lock()
	h.etags[name] = etagEntry{fi: fi, etag: etag}
	h.mu.Unlock()
	return etag, nil
}
