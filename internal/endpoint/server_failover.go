package endpoint

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cascade-update/cascade/internal/failover"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/update"
)

// serverFailover sends the endpoint's calls to its server (status,
// reports, the event stream), addressed to the first server URL, to the
// first of the site's servers that answers: the servers in order, those
// whose connection failed shortly before (the Health the update runs
// share, under update.URLKey) moved to the end, so that a dead first
// server costs one failed connection, not one per call, and is used again
// once its failure is forgotten. A server that cannot be reached (refused,
// TLS or pin failure, no answer within the header timeout) or answers 5xx
// makes the call go to the next; any other answer is the call's.
type serverFailover struct {
	servers []*url.URL
	keys    []string
	health  *failover.Health
	next    http.RoundTripper
}

func newServerFailover(urls []string, health *failover.Health, next http.RoundTripper) (*serverFailover, error) {
	f := &serverFailover{health: health, next: next}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("server URL %q is not an absolute URL", s)
		}
		u.Path = strings.TrimRight(u.Path, "/")
		f.servers = append(f.servers, u)
		f.keys = append(f.keys, update.URLKey(policy.Source{Kind: policy.Server}, s))
	}
	return f, nil
}

// order is the order servers are tried in.
func (f *serverFailover) order() []int {
	var ok, failed []int
	for i, k := range f.keys {
		if f.health != nil && f.health.Failed(k) != nil {
			failed = append(failed, i)
		} else {
			ok = append(ok, i)
		}
	}
	return append(ok, failed...)
}

func (f *serverFailover) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(f.servers) == 1 {
		return f.next.RoundTrip(r)
	}
	var errs []error
	order := f.order()
	for n, i := range order {
		req, err := f.to(r, i, n == 0)
		if err != nil {
			errs = append(errs, err)
			break
		}
		resp, err := f.next.RoundTrip(req)
		last := n == len(order)-1
		switch {
		case err == nil && (resp.StatusCode < 500 || last):
			if f.health != nil && resp.StatusCode < 500 {
				f.health.Forget(f.keys[i])
			}
			return resp, nil
		case r.Context().Err() != nil:
			if err == nil {
				return resp, nil
			}
			return nil, err
		case err != nil:
			if f.health != nil {
				f.health.Fail(f.keys[i], failure.New(failure.Unreachable, f.keys[i], err))
			}
			errs = append(errs, fmt.Errorf("%s: %w", f.servers[i].Host, err))
		default:
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			errs = append(errs, fmt.Errorf("%s: answered %s", f.servers[i].Host, resp.Status))
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, &allServersError{errs}
}

// to returns r addressed to server i; first says whether it is the first
// attempt (r's body, if it cannot be had again, goes only with it).
func (f *serverFailover) to(r *http.Request, i int, first bool) (*http.Request, error) {
	req := r.Clone(r.Context())
	if r.Body != nil && r.Body != http.NoBody {
		switch {
		case r.GetBody != nil:
			b, err := r.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = b
		case !first:
			return nil, fmt.Errorf("%s %s: the request cannot be sent again to another server", r.Method, r.URL.Path)
		}
	}
	s := f.servers[i]
	req.URL.Scheme, req.URL.Host, req.Host = s.Scheme, s.Host, ""
	req.URL.Path = s.Path + strings.TrimPrefix(r.URL.Path, f.servers[0].Path)
	req.URL.RawPath = ""
	return req, nil
}

// allServersError is a call that no server answered: each one's error,
// on one line.
type allServersError struct{ errs []error }

func (e *allServersError) Error() string {
	s := make([]string, len(e.errs))
	for i, err := range e.errs {
		s[i] = err.Error()
	}
	return fmt.Sprintf("no server answered (%d tried): %s", len(e.errs), strings.Join(s, "; "))
}

func (e *allServersError) Unwrap() []error { return e.errs }
