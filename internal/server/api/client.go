package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxResponse caps a response body the client reads.
const MaxResponse = 64 << 20

// StatusError is an error response of the API.
type StatusError struct {
	Code     int
	Message  string
	Problems []string
	// RetryAfter is the answer's Retry-After (in seconds), zero without
	// one: with 429 and 503 the server says when to try again.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return e.Message
}

// IsStatus reports whether err is a StatusError with the given code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// URL is the server's base URL ("https://cascade.corp.example:8443/").
	URL string
	// Token is sent as "Authorization: Bearer" (an admin token or an
	// endpoint credential); empty for enrollment.
	Token string
	// Fingerprint pins the server's key (or, the pin of earlier versions,
	// its certificate); zero verifies its certificate against the system
	// roots instead.
	Fingerprint Fingerprint
	// OnPinned, if set with Fingerprint, is called with the key
	// fingerprint of each server the pin accepts (not with HTTPClient).
	OnPinned func(key Fingerprint)
	// HTTPClient, if set, sends the requests (its transport must do the
	// pinning); otherwise the client builds one.
	HTTPClient *http.Client
	// Timeout bounds each call (default 30s).
	Timeout time.Duration
	// UserAgent is sent with every request (default "cascade").
	UserAgent string
}

// Client calls the server's API. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	timeout   time.Duration
	userAgent string
}

// ErrPlainHTTP refuses a server URL that is not https.
var ErrPlainHTTP = errors.New("refused: over http:// the tokens, credentials, trust roots and policy it carries would travel in clear and the pinned fingerprint would never be checked; use https://")

// CheckServerURL checks the URL of a management server that credentials
// or trust roots are exchanged with (enrollment, an endpoint's server
// link, the admin CLI): an absolute https URL. http:// is ErrPlainHTTP.
func CheckServerURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err == nil && strings.EqualFold(u.Scheme, "http") && u.Host != "":
		return fmt.Errorf("server URL %s: %w", s, ErrPlainHTTP)
	case err != nil || !strings.EqualFold(u.Scheme, "https") || u.Host == "":
		return fmt.Errorf("server URL %q: want an absolute https:// URL", s)
	}
	return nil
}

// NewClient returns a client for the server at o.URL.
func NewClient(o ClientOptions) (*Client, error) {
	if err := CheckServerURL(o.URL); err != nil {
		return nil, err
	}
	u, _ := url.Parse(o.URL)
	u.Path = strings.TrimRight(u.Path, "/")
	c := &Client{base: u, token: o.Token, http: o.HTTPClient, timeout: o.Timeout, userAgent: o.UserAgent}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	if c.userAgent == "" {
		c.userAgent = "cascade"
	}
	if c.http == nil {
		tr := NewTransport(o.Fingerprint, nil)
		if !o.Fingerprint.IsZero() {
			tr.TLSClientConfig = PinnedTLSConfigFunc(o.Fingerprint, o.OnPinned)
		}
		c.http = &http.Client{Transport: tr}
	}
	return c, nil
}

// NewTransport returns a transport with connect, TLS and header timeouts
// that pins fp (PinnedTLSConfig; when fp is zero, it verifies
// certificates against the system roots). proxy may be nil (no proxy).
func NewTransport(fp Fingerprint, proxy func(*http.Request) (*url.URL, error)) *http.Transport {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if !fp.IsZero() {
		tc = PinnedTLSConfig(fp)
	}
	return &http.Transport{
		Proxy:                  proxy,
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  60 * time.Second,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
}

// URL returns the server's base URL, without a trailing slash.
func (c *Client) URL() string { return c.base.String() }

// HTTPClient returns the client's HTTP client (with its pinning), for
// long-lived requests such as the event stream.
func (c *Client) HTTPClient() *http.Client { return c.http }

// Token returns the bearer token the client sends.
func (c *Client) Token() string { return c.token }

// Endpoint returns the URL of an API path, with query q.
func (c *Client) Endpoint(path string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = q.Encode()
	return u.String()
}

// Call sends in (JSON-encoded, unless nil) to path with method and
// decodes the answer into out (unless nil). An error status is a
// *StatusError.
func (c *Client) Call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.Endpoint(path, q), body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.Authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, describeTLSError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if len(data) > MaxResponse {
		return fmt.Errorf("%s %s: answer larger than %d bytes", method, path, MaxResponse)
	}
	if resp.StatusCode >= 300 {
		se := &StatusError{Code: resp.StatusCode}
		if n, err := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 32); err == nil && n > 0 {
			se.RetryAfter = time.Duration(n) * time.Second
		}
		var e Error
		if json.Unmarshal(data, &e) == nil {
			se.Message, se.Problems = e.Error, e.Problems
		}
		return se
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Authorize adds the client's bearer token and user agent to req.
func (c *Client) Authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.userAgent)
}
