package server

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/ratelimit"
)

// Limits bound what one client can make the server do (docs/security.md).
// Zero fields take their defaults; a negative rate or count turns that
// limit off.
type Limits struct {
	// EnrollPerMinute is how many enrollment requests one client address
	// (an IPv6 /64) may make per minute, EnrollBurst how many at once
	// (defaults 30 and 30). More are answered 429 with Retry-After.
	EnrollPerMinute float64 `json:"enroll_per_minute,omitempty"`
	EnrollBurst     int     `json:"enroll_burst,omitempty"`
	// ReportsPerHour is how many reports one endpoint may upload per
	// hour, ReportBurst how many at once (defaults 120 and 60: enough for
	// a full outbox of queued reports after an outage). More are
	// answered 429 with Retry-After; the endpoint keeps them queued.
	ReportsPerHour float64 `json:"reports_per_hour,omitempty"`
	ReportBurst    int     `json:"report_burst,omitempty"`
	// IngestMemory bounds the bytes of report uploads the server holds at
	// once, from reading the body until the report is stored (default
	// 256 MiB). An upload that does not fit is answered 503 with
	// Retry-After; the endpoint keeps the report queued.
	IngestMemory int64 `json:"ingest_memory,omitempty"`
	// BodyTimeout is how long a client may take to send a request body
	// to the API (default 60s; the event stream has no body). A slower
	// client gets 408 and its connection is closed.
	BodyTimeout Duration `json:"body_timeout,omitempty"`
	// ConnsPerAddress bounds the connections one client address (an IPv6
	// /64) may hold open (default 1024); more are closed at once. Every
	// endpoint holds one for its event stream: raise it when more
	// endpoints than this reach the server through one NAT address.
	ConnsPerAddress int `json:"conns_per_address,omitempty"`
}

func (l *Limits) defaults() {
	if l.EnrollPerMinute == 0 {
		l.EnrollPerMinute = 30
	}
	if l.EnrollBurst <= 0 {
		l.EnrollBurst = 30
	}
	if l.ReportsPerHour == 0 {
		l.ReportsPerHour = 120
	}
	if l.ReportBurst <= 0 {
		l.ReportBurst = 60
	}
	if l.IngestMemory <= 0 {
		l.IngestMemory = 256 << 20
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = Duration(time.Minute)
	}
	if l.ConnsPerAddress == 0 {
		l.ConnsPerAddress = 1024
	}
}

// newEnrollLimiter limits enrollment per client address.
func newEnrollLimiter(l Limits, now func() time.Time) *ratelimit.Limiter {
	return ratelimit.New(ratelimit.Options{Rate: l.EnrollPerMinute, Per: time.Minute, Burst: l.EnrollBurst, Now: now})
}

// tooMany is a 429 asking the client to come back after retry.
func tooMany(retry time.Duration, format string, args ...any) error {
	return &httpError{code: http.StatusTooManyRequests, msg: fmt.Sprintf(format, args...), retryAfter: retry}
}

// setRetryAfter sets the Retry-After header in whole seconds (at least 1).
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10))
}

// bodyDeadline gives every API request with a body (the event stream
// has none) Limits.BodyTimeout to send it: a slower client's read fails
// (408, see readBody) and its connection is closed. The deadline is
// lifted once the body has been read to its end, so that it cannot cut
// off a long answer (net/http's background read after the body would
// otherwise cancel the request's context when it expires).
func (s *Server) bodyDeadline(h http.Handler) http.Handler {
	timeout := time.Duration(s.limits.BodyTimeout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || !strings.HasPrefix(r.URL.Path, "/api/") {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			h.ServeHTTP(w, r) // not a connection that has deadlines (tests' recorders)
			return
		}
		r2 := r.WithContext(r.Context()) // leaves net/http's own request and body alone
		r2.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		h.ServeHTTP(w, r2)
	})
}

// deadlineBody lifts the read deadline at the end of the body.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
