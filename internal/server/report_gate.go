package server

import (
	"net/http"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/ratelimit"
)

// reportGate admits report uploads so that no endpoint credential can
// exhaust the server: one upload at a time per endpoint, at most
// Limits.ReportsPerHour per endpoint, and Limits.IngestMemory bytes of
// uploads held in total, from reading the body until the report is
// stored (which bounds the ingest queue by bytes). A refused upload is
// answered before its body is read, 429 or 503 with Retry-After; the
// endpoint keeps the report queued and sends it later.
type reportGate struct {
	rate     *ratelimit.Limiter
	maxBytes int64

	mu    sync.Mutex
	busy  map[string]bool // endpoints with an upload in progress
	bytes int64           // held by admitted uploads
}

// retryFull is the Retry-After of an upload refused for want of memory.
const retryFull = 10 * time.Second

func newReportGate(l Limits, now func() time.Time) *reportGate {
	return &reportGate{maxBytes: l.IngestMemory, busy: map[string]bool{},
		rate: ratelimit.New(ratelimit.Options{Rate: l.ReportsPerHour, Per: time.Hour, Burst: l.ReportBurst, Now: now})}
}

// admit reserves size bytes for an upload of endpoint's; release gives
// them back and ends the upload.
func (g *reportGate) admit(endpoint string, size int64) (release func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.busy[endpoint] {
		return nil, tooMany(time.Second, "another report upload of this endpoint is in progress")
	}
	if g.bytes+size > g.maxBytes {
		return nil, &httpError{code: http.StatusServiceUnavailable, retryAfter: retryFull,
			msg: "the server is busy storing reports; try again later"}
	}
	if ok, retry := g.rate.Allow(endpoint); !ok {
		return nil, tooMany(retry, "too many reports from this endpoint; try again in %s", retry)
	}
	g.busy[endpoint] = true
	g.bytes += size
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			delete(g.busy, endpoint)
			g.bytes -= size
		})
	}, nil
}

// held returns the bytes held by admitted uploads.
func (g *reportGate) held() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bytes
}

// uploadSize is what an upload of r may hold in memory: its declared
// length, or the limit when it declares none (or more: it is refused
// with 413 once the limit is read).
func uploadSize(r *http.Request) int64 {
	if r.ContentLength < 0 || r.ContentLength > maxReportBody {
		return maxReportBody + 1
	}
	return r.ContentLength
}
