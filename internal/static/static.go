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
//   - The revalidation of an unchanged file (If-None-Match matching its
//     ETag, the request every client polling timestamp.json makes) costs
//     one fstatat(2): the handler keeps the tree's directories open and
//     remembers each file's ETag with the inode, size and modification
//     time it was computed for, and answers 304 without opening the file.
//     Caveat: a directory of the tree must not be replaced by renaming
//     another one over it while it is served (files may be replaced
//     freely; directories may be removed and recreated).
//   - AppendNotModified and AppendNotFound give servers that write
//     responses themselves (internal/fastpath) ServeHTTP's 304 and 404
//     as bytes, decided by the same code.
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
	"sync/atomic"
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
	// RevalidateAfter lets a conditional request that matches a file's
	// remembered ETag be answered 304 without even a stat of the file for
	// this long after the file was last checked (default 0: every request
	// checks). Caveat: a file changed by another process is then noticed
	// up to this late; a process that changes the tree itself calls
	// Forget after each change.
	RevalidateAfter time.Duration
	// Logger receives unexpected errors (default: discard).
	Logger *slog.Logger
}

// ImmutableCacheControl is the Cache-Control of consistent-snapshot files.
const ImmutableCacheControl = "public, max-age=31536000, immutable"

// Handler serves the files under one directory. It is safe for concurrent
// use. Close it when done.
type Handler struct {
	root         *dirHandle // the tree's root directory
	mutableCache string
	mutableValue []string // {mutableCache}
	hashLimit    int64
	revalidate   time.Duration
	log          *slog.Logger

	dirs  sync.Map     // directory name -> *dirHandle, kept open
	nDirs atomic.Int64 // entries in dirs
	metas sync.Map     // file name -> *fileMeta
	nMeta atomic.Int64 // entries in metas
}

// fileMeta is what the 304 path needs of a file: its ETag and
// Last-Modified, and the file state they were computed for.
type fileMeta struct {
	fi           fs.FileInfo
	etag         string
	lastModified string
	// The header values, built once: a 304 then sets them without
	// allocating.
	etagValue, lastModifiedValue []string
	// checked is when the file was last seen in this state (Unix nanos).
	checked atomic.Int64
}

// Constant header values of the 304 path (net/http does not modify them).
var (
	nosniffValue   = []string{"nosniff"}
	immutableValue = []string{ImmutableCacheControl}
)

// Bounds of the handler's caches: beyond them a cache is emptied and
// refilled (a tree holds far fewer directories and current files).
const (
	maxDirs  = 4096
	maxMetas = 1 << 16
)

// New returns a Handler serving the tree under dir.
func New(dir string, opts Options) (*Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("static: open tree: %w", err)
	}
	h := &Handler{
		root:         newDirHandle(root, 1),
		mutableCache: "no-cache",
		hashLimit:    opts.ContentHashLimit,
		revalidate:   opts.RevalidateAfter,
		log:          opts.Logger,
	}
	if s := int64(opts.MutableMaxAge / time.Second); s > 0 {
		h.mutableCache = "public, max-age=" + strconv.FormatInt(s, 10)
	}
	if h.hashLimit <= 0 {
		h.hashLimit = 1 << 20
	}
	h.mutableValue = []string{h.mutableCache}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// Close releases the tree's directory handles, each closed once the
// requests in flight using it are done. Later requests fail with 404.
func (h *Handler) Close() error {
	h.dirs.Range(func(k, v any) bool {
		h.forgetDir(k.(string), v.(*dirHandle))
		return true
	})
	h.root.release()
	return nil
}

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
	m, d, base, err := h.revalidation(name, r.Header.Get("If-None-Match"))
	if err != nil {
		h.notFound(w, name, err)
		return
	}
	if m != nil {
		h.notModified(w, name, m)
		return
	}
	f, fi, err := open(d.Root, base)
	d.release()
	if err != nil {
		h.notFound(w, name, err)
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

// revalidation answers the If-None-Match check of file name: the
// remembered metadata of the file when inm matches its current ETag (the
// request is then answered 304), or else the open directory and base
// name of the file, to be served; the caller releases d. err is that of
// looking the file up.
func (h *Handler) revalidation(name, inm string) (m *fileMeta, d *dirHandle, base string, err error) {
	if inm != "" && h.revalidate > 0 {
		if m := h.recent(name); m != nil && etagMatch(inm, m.etag) {
			return m, nil, "", nil
		}
	}
	d, base, fi, err := h.lookup(name)
	if err != nil {
		return nil, nil, "", err
	}
	if m := h.meta(name, fi); m != nil && inm != "" && etagMatch(inm, m.etag) {
		d.release()
		return m, nil, "", nil
	}
	return nil, d, base, nil
}

// AppendNotModified is the 304 path of ServeHTTP for servers that write
// responses themselves (internal/fastpath): if a GET or HEAD of
// urlPath with If-None-Match inm would be answered 304, it appends to
// dst the status line and header lines of that response, exactly as
// net/http writes them for ServeHTTP (sorted by name, each ending in
// CRLF; without Date, Connection and the blank line, which the server
// adds) and returns true. Otherwise it returns dst unchanged and false,
// and the request is for ServeHTTP.
func (h *Handler) AppendNotModified(dst []byte, urlPath, inm string) ([]byte, bool) {
	if inm == "" {
		return dst, false
	}
	name, status := cleanPath(urlPath)
	if status != http.StatusOK {
		return dst, false
	}
	m, d, _, err := h.revalidation(name, inm)
	if d != nil {
		d.release()
	}
	if err != nil || m == nil {
		return dst, false
	}
	return h.appendNotModified(dst, name, m), true
}

// notFoundBody is the body of ServeHTTP's 404.
var notFoundBody = []byte(http.StatusText(http.StatusNotFound) + "\n")

// AppendNotFound is, like AppendNotModified, the 404 path of ServeHTTP
// for servers that write responses themselves: if a GET or HEAD of
// urlPath would be answered 404 because no such file or directory
// exists, it appends the status line and header lines of that response
// and returns them with its body (to be sent with a Content-Length after
// Date) and true. Otherwise it returns dst unchanged, nil and false.
func (h *Handler) AppendNotFound(dst []byte, urlPath string) ([]byte, []byte, bool) {
	name, status := cleanPath(urlPath)
	if status != http.StatusOK {
		return dst, nil, false
	}
	d, _, _, err := h.lookup(name)
	if err == nil {
		d.release()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return dst, nil, false
	}
	dst = append(dst, "HTTP/1.1 404 Not Found\r\nCache-Control: no-store\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"...)
	return dst, notFoundBody, true
}

// appendNotModified appends the head of the 304 answered from m.
func (h *Handler) appendNotModified(dst []byte, name string, m *fileMeta) []byte {
	dst = append(dst, "HTTP/1.1 304 Not Modified\r\nCache-Control: "...)
	dst = append(dst, h.cacheControl(name)[0]...)
	dst = append(dst, "\r\nEtag: "...)
	dst = append(dst, m.etag...)
	if m.lastModified != "" {
		dst = append(dst, "\r\nLast-Modified: "...)
		dst = append(dst, m.lastModified...)
	}
	return append(dst, "\r\nX-Content-Type-Options: nosniff\r\n"...)
}

// notFound answers 404, logging errors other than a missing or irregular
// file.
func (h *Handler) notFound(w http.ResponseWriter, name string, err error) {
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errNotRegular) {
		h.log.Warn("static: open", "path", name, "err", err)
	}
	httpError(w, http.StatusNotFound)
}

// notModified answers 304 from a file's remembered metadata, with the
// headers http.ServeContent sends with a 304.
func (h *Handler) notModified(w http.ResponseWriter, name string, m *fileMeta) {
	hdr := w.Header()
	hdr["X-Content-Type-Options"] = nosniffValue
	hdr["Cache-Control"] = h.cacheControl(name)
	hdr["Etag"] = m.etagValue
	if m.lastModified != "" {
		hdr["Last-Modified"] = m.lastModifiedValue
	}
	w.WriteHeader(http.StatusNotModified)
}

// cacheControl is the Cache-Control header value of file name's
// revalidations, shared (not to be modified).
func (h *Handler) cacheControl(name string) []string {
	if immutable(name) {
		return immutableValue
	}
	return h.mutableValue
}

// etagMatch is the weak comparison of If-None-Match (a list, or "*")
// with etag.
func etagMatch(header, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for candidate := range strings.SplitSeq(header, ",") {
		candidate = strings.TrimSpace(candidate)
		if candidate == "*" || strings.TrimPrefix(candidate, "W/") == etag {
			return true
		}
	}
	return false
}

func httpError(w http.ResponseWriter, code int) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(code), code)
}

var errNotRegular = errors.New("not a regular file")

// recent returns the remembered metadata of name if the file was checked
// less than RevalidateAfter ago.
func (h *Handler) recent(name string) *fileMeta {
	v, ok := h.metas.Load(name)
	if !ok {
		return nil
	}
	m := v.(*fileMeta)
	if time.Now().UnixNano()-m.checked.Load() >= int64(h.revalidate) {
		return nil
	}
	return m
}

// Forget drops what the handler remembers of the tree's files, so that
// the next request for each checks it on disk. A process that changes
// the tree while it is served with RevalidateAfter calls it after each
// change.
func (h *Handler) Forget() {
	h.metas.Clear()
	h.nMeta.Store(0)
}

// lookup returns the open handle of the directory of file name (a path
// in the tree), the file's base name and its state (symbolic links
// inside the tree followed). The caller releases the handle when err is
// nil or tells of the file (the handle is then not nil). The handle is
// cached; a cached handle of a directory removed since is dropped and
// the directory opened again.
func (h *Handler) lookup(name string) (*dirHandle, string, fs.FileInfo, error) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	for attempt := 0; ; attempt++ {
		d, cached, err := h.dir(dir)
		if err != nil {
			return nil, base, nil, err
		}
		fi, err := d.Stat(base)
		if err != nil && cached && attempt == 0 && errors.Is(err, fs.ErrNotExist) {
			h.forgetDir(dir, d)
			d.release()
			continue
		}
		if err == nil && !fi.Mode().IsRegular() {
			err = errNotRegular
		}
		if err != nil {
			d.release()
			return nil, base, nil, err
		}
		return d, base, fi, nil
	}
}

// errClosed is the lookup error of a request after Close.
var errClosed = fmt.Errorf("static: handler closed: %w", fs.ErrNotExist)

// dir returns an open handle of directory dir of the tree ("" is the
// tree's root), acquired for the caller, and whether it came from the
// cache.
func (h *Handler) dir(dir string) (*dirHandle, bool, error) {
	if dir == "" {
		if !h.root.acquire() {
			return nil, false, errClosed
		}
		return h.root, false, nil
	}
	if v, ok := h.dirs.Load(dir); ok {
		if d := v.(*dirHandle); d.acquire() {
			return d, true, nil
		}
		// Forgotten and closed meanwhile: open it again.
	}
	if !h.root.acquire() {
		return nil, false, errClosed
	}
	r, err := h.root.OpenRoot(dir)
	h.root.release()
	if err != nil {
		return nil, false, err
	}
	d := newDirHandle(r, 2) // the cache's reference and the caller's
	if h.nDirs.Load() >= maxDirs {
		h.dirs.Range(func(k, v any) bool { h.forgetDir(k.(string), v.(*dirHandle)); return true })
	}
	if v, loaded := h.dirs.LoadOrStore(dir, d); loaded {
		if prev := v.(*dirHandle); prev.acquire() {
			r.Close()
			return prev, true, nil
		}
		d.refs.Store(1) // the cached one is being forgotten: use ours, uncached
		return d, false, nil
	}
	h.nDirs.Add(1)
	return d, false, nil
}

// forgetDir drops a cached directory handle. It is closed once the
// requests in flight using it release it.
func (h *Handler) forgetDir(dir string, d *dirHandle) {
	if h.dirs.CompareAndDelete(dir, d) {
		h.nDirs.Add(-1)
		d.release()
	}
}

// dirHandle is an open directory of the tree, shared by the handler's
// cache and the requests using it, and closed when the last of them
// releases it.
type dirHandle struct {
	*os.Root
	refs atomic.Int64 // the cache's reference, if cached, and one per user; 0: closed
}

func newDirHandle(r *os.Root, refs int64) *dirHandle {
	d := &dirHandle{Root: r}
	d.refs.Store(refs)
	return d
}

// acquire takes a reference to d; false if d is closed.
func (d *dirHandle) acquire() bool {
	for {
		n := d.refs.Load()
		if n <= 0 {
			return false
		}
		if d.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives a reference back, closing d with the last one.
func (d *dirHandle) release() {
	if d.refs.Add(-1) == 0 {
		d.Root.Close()
	}
}

// meta returns the remembered ETag of a file in state fi: the stat ETag
// of an immutable file, the content ETag of a mutable one if it was
// computed for this very state (same inode, size and modification time);
// nil otherwise.
func (h *Handler) meta(name string, fi fs.FileInfo) *fileMeta {
	if v, ok := h.metas.Load(name); ok {
		m := v.(*fileMeta)
		if os.SameFile(m.fi, fi) && m.fi.Size() == fi.Size() && m.fi.ModTime().Equal(fi.ModTime()) {
			m.checked.Store(time.Now().UnixNano())
			return m
		}
	}
	if !immutable(name) {
		return nil
	}
	return h.remember(name, fi, statETag(fi))
}

// remember stores the 304 metadata of a file.
func (h *Handler) remember(name string, fi fs.FileInfo, etag string) *fileMeta {
	m := &fileMeta{fi: fi, etag: etag, etagValue: []string{etag}}
	m.checked.Store(time.Now().UnixNano())
	if t := fi.ModTime(); !t.IsZero() && !t.Equal(time.Unix(0, 0)) {
		m.lastModified = t.UTC().Format(http.TimeFormat)
		m.lastModifiedValue = []string{m.lastModified}
	}
	if h.nMeta.Load() >= maxMetas {
		h.metas.Clear()
		h.nMeta.Store(0)
	}
	if _, loaded := h.metas.Swap(name, m); !loaded {
		h.nMeta.Add(1)
	}
	return m
}

// open opens base in directory d and checks that it is a regular file.
func open(d *os.Root, base string) (*os.File, fs.FileInfo, error) {
	f, err := d.OpenFile(base, os.O_RDONLY|openFlags, 0)
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
// remembered for as long as the file (same inode, size and modification
// time) is unchanged. Files larger than the limit get a statETag.
func (h *Handler) contentETag(name string, f *os.File, fi fs.FileInfo) (string, error) {
	if fi.Size() > h.hashLimit {
		return statETag(fi), nil
	}
	if m := h.meta(name, fi); m != nil {
		return m.etag, nil
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	etag := `"` + hex.EncodeToString(sum.Sum(nil)[:16]) + `"`
	h.remember(name, fi, etag)
	return etag, nil
}
