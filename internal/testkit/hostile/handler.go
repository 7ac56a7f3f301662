package hostile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Handler is a hostile source inside HTTP: it answers every request for
// a file of its tree in the way its Behaviour says. It is safe for
// concurrent use. Close it when done: Close also ends the requests it
// keeps waiting (Silent, Stall, Trickle, Endless).
type Handler struct {
	o    Options
	dir  *os.Root
	alt  *os.Root // nil without Options.Alt
	done chan struct{}
	once sync.Once
	hits atomic.Int64
	// inflight counts the requests being answered, so that Server.Close
	// can wait for them; none is added once closed is set.
	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

// New returns the handler of a behaviour that happens inside HTTP. The
// connection-level behaviours (Refuse, Reset, Hang, Garbage, HeaderFlood)
// need Start.
func New(o Options) (*Handler, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Behaviour.ConnectionLevel() {
		return nil, fmt.Errorf("hostile source: behaviour %s happens below HTTP: use Start", o.Behaviour)
	}
	h := &Handler{o: o, done: make(chan struct{})}
	if h.dir, err = os.OpenRoot(o.Dir); err != nil {
		return nil, fmt.Errorf("hostile source: open tree: %w", err)
	}
	if o.Alt != "" {
		if h.alt, err = os.OpenRoot(o.Alt); err != nil {
			h.dir.Close()
			return nil, fmt.Errorf("hostile source: open other tree: %w", err)
		}
	}
	return h, nil
}

// Misbehaved returns how many requests the handler has answered in its
// hostile way (requests that Options.Match left out, and files that do
// not exist for the behaviours that alter a file, are not counted).
func (h *Handler) Misbehaved() int64 { return h.hits.Load() }

// Close ends the requests the handler keeps waiting, by aborting them
// (panic(http.ErrAbortHandler), which drops the connection), and releases
// its trees; a request in the middle of a write ends when its next write
// fails (closing the server's connections makes it fail at once).
// Requests that arrive later fail.
func (h *Handler) Close() error {
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		close(h.done)
	})
	err := h.dir.Close()
	if h.alt != nil {
		err = errors.Join(err, h.alt.Close())
	}
	return err
}

// ServeHTTP answers one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enter() {
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	defer h.inflight.Done()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := cleanName(r.URL.Path)
	if !ok {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	if h.o.Behaviour == Honest || h.o.Match != nil && !h.o.Match(r.URL.Path) {
		serveFile(w, r, h.dir, name)
		return
	}
	switch h.o.Behaviour {
	case Silent:
		h.hits.Add(1)
		h.wait(r)
	case Status:
		h.hits.Add(1)
		h.status(w)
	case RedirectLoop, RedirectChain, RedirectScheme:
		h.hits.Add(1)
		h.redirect(w, r)
	case Rollback, Expired, Freeze, Foreign:
		h.hits.Add(1)
		serveFile(w, r, h.alt, name)
	case Mix:
		h.mix(w, r, name)
	case Endless:
		h.hits.Add(1)
		b, _ := h.dir.ReadFile(name) // a missing file is endless spaces alone
		h.endless(w, r, b)
	default:
		h.alter(w, r, name)
	}
}

// enter counts a request in, unless the handler is closed.
func (h *Handler) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.inflight.Add(1)
	return true
}

// cleanName turns a request path into a name inside the tree.
func cleanName(urlPath string) (string, bool) {
	name := strings.TrimPrefix(urlPath, "/")
	if name == "" || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return "", false
	}
	return name, true
}

// serveFile answers honestly with the regular file name of root (ranges
// and conditional requests included), or 404.
func serveFile(w http.ResponseWriter, r *http.Request, root *os.Root, name string) {
	f, err := root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// wait blocks until the client gives up or the handler is closed.
func (h *Handler) wait(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-h.done:
	}
	h.abortIfClosed()
}

// pause waits d, and reports false if the client gave up meanwhile.
func (h *Handler) pause(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-h.done:
	}
	h.abortIfClosed()
	return false
}

// abortIfClosed drops the connection of a request the handler was
// keeping when it was closed: returning normally would let net/http
// finish the reply (a 200 with an empty or chunked body, which a client
// would take as complete).
func (h *Handler) abortIfClosed() {
	select {
	case <-h.done:
		panic(http.ErrAbortHandler)
	default:
	}
}

func (h *Handler) status(w http.ResponseWriter) {
	code := h.o.Status
	if h.o.RetryAfter != "" {
		w.Header().Set("Retry-After", h.o.RetryAfter)
	}
	w.WriteHeader(code)
	if code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified {
		fmt.Fprintf(w, "%d %s\n", code, http.StatusText(code))
	}
}

func (h *Handler) redirect(w http.ResponseWriter, r *http.Request) {
	var loc string
	hop, _ := strconv.Atoi(r.URL.Query().Get("hop"))
	switch h.o.Behaviour {
	case RedirectLoop: // path -> path?hop=1 -> path -> ...
		loc = r.URL.Path
		if hop == 0 {
			loc += "?hop=1"
		}
	case RedirectChain:
		loc = fmt.Sprintf("%s?hop=%d", r.URL.Path, hop+1)
	default:
		loc = strings.TrimRight(h.o.RedirectTo, "/") + r.URL.Path
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusFound)
}

// mix answers a request for a role of Options.MixRoles with the newest
// version of that role in Alt, whatever version was asked for, and
// everything else honestly.
func (h *Handler) mix(w http.ResponseWriter, r *http.Request, name string) {
	role, ok := metaRole(r.URL.Path)
	mixed := ok && role != "timestamp" && role != "root" &&
		(slices.Contains(h.o.MixRoles, role) || strings.HasPrefix(role, "bins-") && slices.Contains(h.o.MixRoles, "bins"))
	if mixed {
		if other := newestMeta(h.alt, path.Dir(name), role); other != "" {
			h.hits.Add(1)
			serveFile(w, r, h.alt, other)
			return
		}
	}
	serveFile(w, r, h.dir, name)
}

// alter answers with an altered copy of a file of the tree (Stall,
// Trickle, Tamper, Truncate, ShortLength, Oversize) or, in its place,
// Options.Body (Replace); a missing file is an honest 404.
func (h *Handler) alter(w http.ResponseWriter, r *http.Request, name string) {
	b, err := h.dir.ReadFile(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h.hits.Add(1)
	rc := http.NewResponseController(w)
	switch h.o.Behaviour {
	case Stall:
		h.header(w, name, int64(len(b)), true)
		w.Write(b[:len(b)/2])
		rc.Flush()
		h.wait(r)
	case Trickle:
		h.trickle(w, r, name, b)
	case Tamper:
		b = bytes.Clone(b)
		if len(b) > 0 {
			b[len(b)/2] ^= 0xff
		}
		h.header(w, name, int64(len(b)), !h.o.HideLength)
		w.Write(b)
	case Truncate:
		h.header(w, name, int64(len(b)), true)
		w.Write(b[:len(b)/2])
		rc.Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-body
	case ShortLength:
		b = b[:len(b)/2]
		h.header(w, name, int64(len(b)), !h.o.HideLength)
		w.Write(b)
	case Replace:
		h.header(w, name, int64(len(h.o.Body)), true)
		w.Write(h.o.Body)
	case Oversize:
		h.header(w, name, int64(len(b))+h.o.Pad, !h.o.HideLength)
		if _, err := w.Write(b); err == nil {
			h.spaces(w, r, h.o.Pad)
		}
	}
}

// header sends a 200 with the file's content type and, if declare, the
// Content-Length n. Otherwise it flushes the header at once, so that
// net/http cannot add a Content-Length when the body turns out small: the
// body is then chunked.
func (h *Handler) header(w http.ResponseWriter, name string, n int64, declare bool) {
	ct := "application/octet-stream"
	if strings.HasSuffix(name, ".json") {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	if declare {
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	}
	w.WriteHeader(http.StatusOK)
	if !declare {
		http.NewResponseController(w).Flush()
	}
}

func (h *Handler) trickle(w http.ResponseWriter, r *http.Request, name string, b []byte) {
	rc := http.NewResponseController(w)
	h.header(w, name, int64(len(b)), true)
	rc.Flush()
	for len(b) > 0 && h.pause(r, h.o.TrickleEvery) {
		n := min(h.o.TrickleBytes, len(b))
		if _, err := w.Write(b[:n]); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		b = b[n:]
	}
}

// endless sends b and then spaces until the client gives up.
func (h *Handler) endless(w http.ResponseWriter, r *http.Request, b []byte) {
	h.header(w, "", 0, false)
	if _, err := w.Write(b); err != nil {
		return
	}
	h.spaces(w, r, -1)
}

// spaceChunk is what spaces writes at a time.
var spaceChunk = bytes.Repeat([]byte{' '}, 32<<10)

// spaces writes n spaces (n < 0: until the client gives up or the handler
// is closed).
func (h *Handler) spaces(w io.Writer, r *http.Request, n int64) {
	for n != 0 {
		h.abortIfClosed()
		if r.Context().Err() != nil {
			return
		}
		chunk := spaceChunk
		if n > 0 && n < int64(len(chunk)) {
			chunk = chunk[:n]
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		if n > 0 {
			n -= int64(len(chunk))
		}
	}
}
