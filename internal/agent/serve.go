package agent

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// routes is the agent's handler: /healthz, /metrics, and the tree. It is
// not a ServeMux, which would redirect unclean paths: the static handler
// refuses them.
func (a *Agent) routes() http.Handler {
	metrics := a.m.handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			a.healthz(w, r)
		case "/metrics":
			metrics.ServeHTTP(w, r)
		default:
			a.serveTree(w, r)
		}
	})
}

// healthz answers 200 with the served versions once the agent serves the
// vendor repository, and 503 before (nothing to relay yet).
func (a *Agent) healthz(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{}
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
		a.o.AccessLog.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("remote", r.RemoteAddr), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.code), slog.Int64("bytes", rec.n), slog.Duration("duration", time.Since(start)),
			slog.String("user_agent", r.UserAgent()), slog.String("relay", r.Header.Get(RelayHeader)))
	}
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
