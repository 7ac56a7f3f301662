package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/buildinfo"
	"github.com/cascade-update/cascade/internal/fastpath"
)

// services are the agent's own paths (not the tree's) and their
// handlers. This one table is what routes dispatches on and what answer
// declines, so that a path added here is never answered 404 by the fast
// path.
func (a *Agent) services() map[string]http.Handler {
	return map[string]http.Handler{
		"/healthz": http.HandlerFunc(a.healthz),
		"/metrics": a.m.handler(),
	}
}

// routes is the agent's handler: the services (a.service), and the tree
// for every other path. It is not a ServeMux, which would redirect
// unclean paths: the static handler refuses them.
func (a *Agent) routes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := a.service[r.URL.Path]; ok {
			h.ServeHTTP(w, r)
			return
		}
		a.serveTree(w, r)
	})
}

// healthz answers 200 with the served versions once the agent serves the
// vendor repository, and 503 before (nothing to relay yet); "build" is
// the running binary's version, commit and date.
func (a *Agent) healthz(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{"build": buildinfo.Read()}
	a.mu.Lock()
	for kind, s := range a.served {
		body[kind] = map[string]int64{"timestamp": s.timestamp, "snapshot": s.snapshot}
	}
	_, ok := a.served["vendor"]
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(body)
}

// serveTree serves one request for the tree: load control, pull-through,
// then the static handler; every request is counted and logged.
func (a *Agent) serveTree(w http.ResponseWriter, r *http.Request) {
	var start time.Time
	if a.o.AccessLog != nil {
		start = time.Now()
	}
	rec := &recorder{ResponseWriter: w}
	a.m.seen(r.RemoteAddr)
	defer a.finish(rec, r, start)
	if !a.m.acquire(int64(a.o.MaxDownloads)) {
		a.m.unavailableFor("busy")
		unavailable(rec, a.o.RetryAfter, "too many downloads: retry later")
		return
	}
	defer a.m.release()
	var out http.ResponseWriter = rec
	if a.bucket != nil {
		out = &pacedWriter{recorder: rec, b: a.bucket, r: r}
	}
	if p, ok := a.pullable(r); ok && !a.pullThrough(out, r, p) {
		return
	}
	a.files.ServeHTTP(out, r)
}

// answer is serveTree for the requests internal/fastpath answers itself:
// revalidations of unchanged files (304) and requests for missing files
// that cannot be pulled through (404: not under targets/), counted and
// logged alike. It declines every other request (the services' paths
// above all), and one over the download limit (the 503 is then
// net/http's), so that those are served by Handler.
func (a *Agent) answer(dst []byte, r *fastpath.Request) ([]byte, []byte, bool) {
	if _, ok := a.service[r.Path]; ok {
		return dst, nil, false
	}
	var start time.Time
	if a.o.AccessLog != nil {
		start = time.Now()
	}
	if !a.m.acquire(int64(a.o.MaxDownloads)) {
		return dst, nil, false
	}
	code := http.StatusNotModified
	out, ok := a.files.AppendNotModified(dst, r.Path, r.IfNoneMatch)
	var body []byte
	if !ok && !targetPath(r.Path) {
		code = http.StatusNotFound
		out, body, ok = a.files.AppendNotFound(dst, r.Path)
	}
	a.m.release()
	if !ok {
		return dst, nil, false
	}
	a.m.seen(r.RemoteAddr)
	a.m.observe(code, int64(len(body)))
	if a.o.AccessLog != nil {
		a.logRequest(context.Background(), accessRecord{remote: r.RemoteAddr, method: r.Method, path: r.Path, code: code,
			bytes: int64(len(body)), start: start, userAgent: r.Header("User-Agent"), relay: r.Header(RelayHeader)})
	}
	return out, body, true
}

// targetPath reports whether a request path is under a repository's
// targets/ (where a missing file may be pulled through).
func targetPath(p string) bool {
	_, _, ok := splitTarget(p)
	return ok
}

// splitTarget splits a request path "/<kind>/targets/<rel>" into the
// repository kind and the path under its targets/.
func splitTarget(p string) (kind, rel string, ok bool) {
	kind, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	rel, ok = strings.CutPrefix(rest, "targets/")
	return kind, rel, ok
}

// unavailable answers 503 with Retry-After.
func unavailable(w http.ResponseWriter, after time.Duration, msg string) {
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(int(max(after/time.Second, 1))))
	h.Set("Cache-Control", "no-store")
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// finish counts and logs an answered request.
func (a *Agent) finish(rec *recorder, r *http.Request, start time.Time) {
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	a.m.observe(rec.code, rec.n)
	if a.o.AccessLog != nil {
		a.logRequest(r.Context(), accessRecord{remote: r.RemoteAddr, method: r.Method, path: r.URL.Path, code: rec.code,
			bytes: rec.n, start: start, userAgent: r.UserAgent(), relay: r.Header.Get(RelayHeader)})
	}
}

// accessRecord is what the access log says of one request.
type accessRecord struct {
	remote, method, path string
	code                 int
	bytes                int64
	start                time.Time
	userAgent, relay     string
}

// logRequest writes one access log record (Options.AccessLog is set).
func (a *Agent) logRequest(ctx context.Context, r accessRecord) {
	a.o.AccessLog.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("remote", r.remote), slog.String("method", r.method), slog.String("path", r.path),
		slog.Int("status", r.code), slog.Int64("bytes", r.bytes), slog.Duration("duration", time.Since(r.start)),
		slog.String("user_agent", r.userAgent), slog.String("relay", r.relay))
}

// recorder notes the status and body bytes of a response. It passes
// ReadFrom through, so http.ServeContent still sends files with sendfile.
type recorder struct {
	http.ResponseWriter
	code int
	n    int64
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.n += int64(n)
	return n, err
}

// ReadFrom lets the server's own ReadFrom (sendfile) do the copy.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := io.Copy(r.ResponseWriter, src)
	r.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// pacedWriter sends a response through the bandwidth bucket. It has no
// ReadFrom: bodies are copied in small writes, each paced.
type pacedWriter struct {
	*recorder
	b *bucket
	r *http.Request
}

// pacedChunk is the largest write paced at once.
const pacedChunk = 32 << 10

func (p *pacedWriter) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n := min(len(b)-done, pacedChunk)
		if err := p.b.wait(p.r.Context(), n); err != nil {
			return done, err
		}
		k, err := p.recorder.Write(b[done : done+n])
		done += k
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// ReadFrom hides the recorder's, so copies come through Write.
func (p *pacedWriter) ReadFrom(src io.Reader) (int64, error) {
	return io.CopyBuffer(writerOnly{p}, src, make([]byte, pacedChunk))
}

type writerOnly struct{ io.Writer }
