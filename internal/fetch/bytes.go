package fetch

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/cascade-update/cascade/internal/failure"
)

// Response is the answer to a conditional request.
type Response struct {
	// NotModified is true when the source answered 304 to If-None-Match;
	// Body is then nil and the caller's copy is current.
	NotModified bool
	// Body is the response body (at most the requested maximum).
	Body []byte
	// ETag is the source's entity tag (as sent, quotes included), to be
	// passed to the next Conditional call; "" if the source sent none.
	ETag string
}

// Bytes downloads rawURL into memory, for metadata. It reads at most
// maxLen bytes: a longer body, declared or sent, is failure.Verification
// (see the package documentation for every class).
func (f *Fetcher) Bytes(ctx context.Context, rawURL string, maxLen int64) ([]byte, error) {
	r, err := f.Conditional(ctx, rawURL, maxLen, "")
	if err != nil {
		return nil, err
	}
	return r.Body, nil
}

// Conditional is Bytes with If-None-Match: etag (none if etag is ""). A
// 304 answer returns a Response with NotModified set and no body, so
// checking that timestamp.json is unchanged is one small request. A 304
// to a request without an ETag is failure.HTTPError.
func (f *Fetcher) Conditional(ctx context.Context, rawURL string, maxLen int64, etag string) (Response, error) {
	op := "GET " + rawURL
	if maxLen <= 0 {
		return Response{}, failure.Newf(failure.Local, op, "invalid maximum length %d", maxLen)
	}
	hdr := http.Header{}
	if etag != "" {
		hdr.Set("If-None-Match", etag)
	}
	x, err := f.send(ctx, op, rawURL, hdr, f.timeout)
	if err != nil {
		return Response{}, err
	}
	defer x.close()
	switch {
	case x.resp.StatusCode == http.StatusNotModified && etag != "":
		return Response{NotModified: true, ETag: x.resp.Header.Get("ETag")}, nil
	case x.resp.StatusCode != http.StatusOK:
		return Response{}, x.statusError()
	}
	body, err := x.readAll(maxLen)
	if err != nil {
		return Response{}, err
	}
	return Response{Body: body, ETag: x.resp.Header.Get("ETag")}, nil
}

// preallocLimit caps the buffer allocated up front from a declared
// Content-Length, so that a lying header cannot make us allocate maxLen.
const preallocLimit = 1 << 20

// readAll reads the body, at most maxLen bytes.
func (x *exchange) readAll(maxLen int64) ([]byte, error) {
	if cl := x.resp.ContentLength; cl > maxLen {
		return nil, lengthError(x.op, "declared length %d of %s exceeds the limit of %d bytes", cl, x.url, maxLen)
	}
	var buf bytes.Buffer
	if cl := x.resp.ContentLength; cl > 0 {
		buf.Grow(int(min(cl, preallocLimit)))
	}
	n, err := buf.ReadFrom(io.LimitReader(x.body, maxLen+1))
	if err != nil {
		return nil, x.fail(err, true)
	}
	if n > maxLen {
		return nil, lengthError(x.op, "body of %s exceeds the limit of %d bytes", x.url, maxLen)
	}
	return buf.Bytes(), nil
}
