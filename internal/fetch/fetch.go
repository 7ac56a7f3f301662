// Package fetch is the bounded HTTP fetcher that endpoints, update agents
// and the server use to download from a source (docs/update-process.md, Unable to update).
//
// Every request has a context, a connect timeout, a response-header
// timeout, a total time budget, a size cap and a minimum transfer rate
// measured over a sliding window, and every error it returns carries a
// failure class (package failure):
//
//   - dial, DNS and TLS errors, a connect or response-header timeout, the
//     total budget running out before the headers arrived, or a connection
//     that broke in the middle of a body: failure.Unreachable.
//   - 404 and 410 (and 403 with Options.ForbiddenAsNotFound):
//     failure.NotFound. Any other status that is not the one expected,
//     a redirect that the policy below refuses, a malformed reply:
//     failure.HTTPError. Non-2xx statuses also put a
//     *metadata.ErrDownloadHTTP in the chain, as go-tuf expects.
//   - a body that falls below the minimum rate over the window, or the
//     total budget running out while the body is read: failure.TooSlow.
//   - a body longer than the caller's limit, whether declared in
//     Content-Length (rejected before any byte of the body is read) or
//     actually sent (the read stops at limit+1 bytes, so an endless body
//     costs limit+1 bytes): failure.Verification, with a
//     *metadata.ErrDownloadLengthMismatch in the chain. The limit comes
//     from signed metadata (or a configured maximum for the metadata whose
//     length is not signed), so a longer answer is content that does not
//     match what was signed. File also rejects a wrong length or hash with
//     failure.Verification.
//   - the caller's own context being cancelled, or a disk error while
//     writing a target: failure.Local (another source would not help);
//     errors.Is(err, context.Canceled) still holds.
//
// Redirects: at most Options.MaxRedirects (default 5) are followed; a
// redirect from https to http (anywhere in the chain), to a scheme other
// than http(s), or back to a URL already visited (a loop) is refused with
// failure.HTTPError.
//
// A Fetcher is safe for concurrent use, except that two File calls must
// not write the same destination at the same time (callers deduplicate,
// for example with singleflight).
package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Options configures a Fetcher. The zero value is usable; each field's
// default is in its comment.
type Options struct {
	// Client, if set, sends every request. The fetcher uses a copy whose
	// CheckRedirect is replaced by its own redirect policy. Its Transport
	// should have connect, TLS handshake and response-header timeouts: the
	// three timeout fields below only configure the default transport.
	Client *http.Client
	// Transport, if set and Client is nil, is used instead of the default
	// transport.
	Transport http.RoundTripper

	// ConnectTimeout bounds dialling one address (default 3s).
	ConnectTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake (default 5s).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response headers once
	// the request is sent (default 10s): a source that accepts the
	// connection and never answers is Unreachable after it.
	ResponseHeaderTimeout time.Duration
	// TLSConfig is the default transport's TLS configuration, for example
	// a private CA for the management server. nil: system roots, TLS 1.2+.
	TLSConfig *tls.Config
	// Proxy selects a proxy for the default transport. nil: no proxy,
	// whatever the environment says (pass http.ProxyFromEnvironment to
	// honour HTTP_PROXY and friends).
	Proxy func(*http.Request) (*url.URL, error)

	// Timeout is the total time budget of one Bytes or Conditional request,
	// headers and body (default 60s).
	Timeout time.Duration
	// FileTimeout is the total time budget of one File request. Zero means
	// no total limit: a large target on a slow link may take hours, and
	// the minimum rate already abandons a source that stalls.
	FileTimeout time.Duration
	// MinRate is the minimum transfer rate of a body in bytes per second,
	// measured over RateWindow (default 1024 B/s; negative disables it).
	// A body that receives fewer than MinRate*RateWindow bytes in any
	// window (the first window starting when the headers arrive) is
	// abandoned with failure.TooSlow.
	MinRate int64
	// RateWindow is the sliding window of MinRate (default 30s). The rate
	// is checked four times per window.
	RateWindow time.Duration
	// MaxRedirects is the number of redirects followed (default 5;
	// negative: none).
	MaxRedirects int
	// ForbiddenAsNotFound treats 403 like 404. Object stores (S3 and
	// compatible) answer 403 for a missing key when listing is not
	// allowed, and go-tuf must see a 404 to stop probing for the next
	// root version. Security caveat: a source that really refuses access
	// is then reported as not holding the content.
	ForbiddenAsNotFound bool
	// BusyRetries is how many times a 503 answer carrying Retry-After is
	// retried before it counts as failure.HTTPError (default 2; negative:
	// never).
	BusyRetries int
	// MaxRetryWait caps the wait a Retry-After header asks for (default
	// 5s), so that a busy source delays an update run by seconds at most.
	MaxRetryWait time.Duration
	// UserAgent is sent with every request (default "cascade").
	UserAgent string
	// Logger receives one debug record per request (default: discard).
	Logger *slog.Logger
	// Clock drives the minimum-rate watchdog (default: the wall clock).
	Clock Clock
}

// Fetcher downloads from sources with the bounds of its Options.
type Fetcher struct {
	client              *http.Client
	timeout             time.Duration
	fileTimeout         time.Duration
	minRate             int64
	window              time.Duration
	maxRedirects        int
	forbiddenAsNotFound bool
	busyRetries         int
	maxRetryWait        time.Duration
	userAgent           string
	log                 *slog.Logger
	clock               Clock
}

// New returns a Fetcher configured by opts.
func New(opts Options) *Fetcher {
	f := &Fetcher{
		timeout:             orDuration(opts.Timeout, 60*time.Second),
		fileTimeout:         opts.FileTimeout,
		minRate:             opts.MinRate,
		window:              orDuration(opts.RateWindow, 30*time.Second),
		maxRedirects:        opts.MaxRedirects,
		forbiddenAsNotFound: opts.ForbiddenAsNotFound,
		busyRetries:         opts.BusyRetries,
		maxRetryWait:        orDuration(opts.MaxRetryWait, 5*time.Second),
		userAgent:           opts.UserAgent,
		log:                 opts.Logger,
		clock:               opts.Clock,
	}
	if f.minRate == 0 {
		f.minRate = 1024
	}
	if f.maxRedirects == 0 {
		f.maxRedirects = 5
	}
	if f.busyRetries == 0 {
		f.busyRetries = 2
	}
	if f.userAgent == "" {
		f.userAgent = "cascade"
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.clock == nil {
		f.clock = wallClock{}
	}
	var c http.Client
	switch {
	case opts.Client != nil:
		c = *opts.Client
	case opts.Transport != nil:
		c.Transport = opts.Transport
	default:
		c.Transport = DefaultTransport(opts)
	}
	c.CheckRedirect = f.checkRedirect
	f.client = &c
	return f
}

// DefaultTransport returns the transport New builds when given neither a
// Client nor a Transport: the connect, TLS and header timeouts and the
// proxy of opts, no transparent compression (lengths are checked on the
// wire bytes), HTTP/2 when the server offers it.
func DefaultTransport(opts Options) *http.Transport {
	dialer := &net.Dialer{
		Timeout:   orDuration(opts.ConnectTimeout, 3*time.Second),
		KeepAlive: 30 * time.Second,
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.TLSConfig != nil {
		tlsConf = opts.TLSConfig.Clone()
	}
	return &http.Transport{
		Proxy:                  opts.Proxy,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    orDuration(opts.TLSHandshakeTimeout, 5*time.Second),
		ResponseHeaderTimeout:  orDuration(opts.ResponseHeaderTimeout, 10*time.Second),
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
		ForceAttemptHTTP2:      true,
	}
}

// CloseIdleConnections closes the idle connections of the fetcher's
// transport.
func (f *Fetcher) CloseIdleConnections() { f.client.CloseIdleConnections() }

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// redirectError is a redirect the policy refuses.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return "redirect refused: " + e.msg }

func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if f.maxRedirects < 0 || len(via) > f.maxRedirects {
		return &redirectError{fmt.Sprintf("more than %d redirects", max(f.maxRedirects, 0))}
	}
	if s := req.URL.Scheme; s != "http" && s != "https" {
		return &redirectError{"to scheme " + s}
	}
	for _, v := range via {
		if v.URL.String() == req.URL.String() {
			return &redirectError{"loop back to " + req.URL.Redacted()}
		}
		if v.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return &redirectError{"https downgraded to " + req.URL.Redacted()}
		}
	}
	return nil
}

// errTimeout is the cancellation cause when a request's total budget runs
// out.
var errTimeout = errors.New("total time budget exceeded")

// exchange is one request in flight: its contexts, response and watchdog.
type exchange struct {
	f       *Fetcher
	op      string
	url     string
	parent  context.Context
	ctx     context.Context
	cancel  context.CancelCauseFunc
	stopTO  context.CancelFunc
	resp    *http.Response
	body    io.Reader // resp.Body, counted by dog
	dog     *watchdog
	started time.Time
}

// send issues a GET for rawURL with the extra headers hdr and returns the
// exchange once the response headers have arrived. The caller must call
// close. The status is not checked.
func (f *Fetcher) send(ctx context.Context, op, rawURL string, hdr http.Header, timeout time.Duration) (*exchange, error) {
	x := &exchange{f: f, op: op, url: rawURL, parent: ctx, started: time.Now()}
	x.ctx, x.cancel = context.WithCancelCause(ctx)
	x.stopTO = func() {}
	if timeout > 0 {
		x.ctx, x.stopTO = context.WithTimeoutCause(x.ctx, timeout,
			fmt.Errorf("%w (%s)", errTimeout, timeout))
	}
	var resp *http.Response
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(x.ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			x.release()
			return nil, failure.New(failure.Local, op, fmt.Errorf("build request: %w", err))
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", f.userAgent)
		resp, err = f.client.Do(req)
		if err == nil {
			err = x.waitIfBusy(resp, attempt)
		}
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			err = x.fail(err, false)
			x.release()
			return nil, err
		}
		break
	}
	x.resp = resp
	x.dog = startWatchdog(f.clock, f.minRate, f.window, x.cancel)
	x.body = x.dog.reader(resp.Body)
	return x, nil
}

// release frees the contexts of an exchange that has no response.
func (x *exchange) release() {
	x.stopTO()
	x.cancel(nil)
}

// close stops the watchdog, closes the body and logs the exchange.
func (x *exchange) close() {
	x.dog.stop()
	x.resp.Body.Close()
	x.release()
	x.f.log.Debug("fetch", "op", x.op, "status", x.resp.StatusCode,
		"bytes", x.dog.n.Load(), "duration", time.Since(x.started))
}

// fail classifies err, returned by the transport before (afterHeaders
// false) or while reading the body.
func (x *exchange) fail(err error, afterHeaders bool) error {
	// The transport's *url.Error repeats the method and URL that x.op
	// names already.
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	if pe := x.parent.Err(); pe != nil {
		if !errors.Is(err, pe) {
			err = fmt.Errorf("%w: %w", pe, err)
		}
		return failure.New(failure.Local, x.op, err)
	}
	cause := context.Cause(x.ctx)
	var re *redirectError
	switch {
	case errors.Is(cause, errTooSlow):
		return failure.New(failure.TooSlow, x.op, cause)
	case errors.Is(cause, errTimeout) && afterHeaders:
		return failure.New(failure.TooSlow, x.op, cause)
	case errors.Is(cause, errTimeout):
		return failure.New(failure.Unreachable, x.op, cause)
	case errors.As(err, &re):
		return failure.New(failure.HTTPError, x.op, re)
	case !afterHeaders && malformedReply(err):
		return failure.New(failure.HTTPError, x.op, err)
	default:
		return failure.New(failure.Unreachable, x.op, err)
	}
}

// malformedReply reports whether err, returned by the transport before
// the headers were read, means that the source answered something that is
// not a valid HTTP reply: not HTTP at all, or headers beyond the
// transport's MaxResponseHeaderBytes (a header flood). net/http has no
// error type for either.
func malformedReply(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "malformed HTTP") || strings.Contains(msg, "server response headers exceeded")
}

// statusError is the error for an unexpected status: NotFound for 404 and
// 410 (and 403 if so configured), HTTPError otherwise, with go-tuf's
// *metadata.ErrDownloadHTTP in the chain.
func (x *exchange) statusError() error {
	code := x.resp.StatusCode
	class := failure.HTTPError
	switch {
	case code == http.StatusNotFound || code == http.StatusGone:
		class = failure.NotFound
	case code == http.StatusForbidden && x.f.forbiddenAsNotFound:
		class, code = failure.NotFound, http.StatusNotFound
	}
	return failure.New(class, x.op, &metadata.ErrDownloadHTTP{StatusCode: code, URL: x.url})
}

// lengthError is the error for a body longer than allowed.
func lengthError(op, format string, args ...any) error {
	return failure.New(failure.Verification, op,
		&metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf(format, args...)})
}
