package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// Body size limits of API requests.
const (
	maxSmallBody  = 1 << 20  // most requests
	maxEnrollBody = 64 << 10 // enrollment, read before authentication: a token, a host name, its addresses
	maxPolicyBody = 5 << 20  // a policy of 1024 long entries, JSON-wrapped
	maxReportBody = 16 << 20 // one update report (report.MaxReportSize)

	// maxDiscard is how much of a body over its limit is read and
	// discarded after the 413, so that a client that sends its whole
	// request before reading the answer reads the 413 instead of a
	// connection reset (closing a connection with unread data resets
	// it). Reading stops earlier at the body timeout.
	maxDiscard = 16 << 20
)

// httpError is an error with the status and message to answer with.
type httpError struct {
	code       int
	msg        string
	problems   []string
	retryAfter time.Duration // sent as Retry-After when set
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps an error to an HTTP status: an *httpError's own, the
// store's sentinels to 404/409/400/403/503, anything else 500.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrExhausted),
		errors.Is(err, store.ErrForbiddenRole):
		return http.StatusForbidden
	case errors.Is(err, store.ErrReadOnly), errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// writeError answers with err. Internal errors are logged; their text is
// sent only to administrators (detail true), endpoints get a generic one.
// Store errors are in the store's words (the database driver's message
// goes to the log only); a uniqueness conflict answers with what is taken
// and by whom ("agent id ua-1 is already used by endpoint pc-4711 (ep_...)").
func writeError(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error, detail bool) {
	code := statusOf(err)
	body := api.Error{Error: err.Error()}
	var (
		he *httpError
		ce *store.ConflictError
	)
	switch {
	case errors.As(err, &he):
		body.Problems = he.problems
		if he.retryAfter > 0 {
			setRetryAfter(w, he.retryAfter)
		}
	case errors.As(err, &ce):
		body.Error = ce.Error()
	}
	// An internal error, or a store failure (a 503 of a read-only or
	// unavailable database); the handlers' own 5xx (*httpError) are meant
	// for the client as they are.
	if code == http.StatusInternalServerError || (code > http.StatusInternalServerError && he == nil) {
		attrs := []any{"method", r.Method, "path", r.URL.Path, "err", err}
		if cause := store.DriverError(err); cause != nil {
			attrs = append(attrs, "database", cause.Error())
		}
		log.Error("request failed", attrs...)
		if !detail {
			body.Error = http.StatusText(code)
			if code == http.StatusInternalServerError {
				body.Error = "internal server error"
			}
		}
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cascade"`)
	}
	if code == http.StatusRequestEntityTooLarge {
		answerTooLarge(w, r, body)
		return
	}
	writeJSON(w, code, body)
}

// answerTooLarge answers 413 and closes the connection without a reset:
// the answer is sent first, then up to maxDiscard bytes of the rest of
// the body are read and dropped (HTTP/1; HTTP/2 ends only the stream),
// so that a client still sending reads the answer; the connection is
// closed after it. The read deadline set by bodyDeadline still applies.
func answerTooLarge(w http.ResponseWriter, r *http.Request, body api.Error) {
	rc := http.NewResponseController(w)
	duplex := r.ProtoMajor == 1 && rc.EnableFullDuplex() == nil
	if duplex {
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, http.StatusRequestEntityTooLarge, body)
	if !duplex {
		return
	}
	if rc.Flush() == nil {
		io.CopyN(io.Discard, r.Body, maxDiscard)
	}
}

// decodeJSON decodes r's body, at most limit bytes, strictly (unknown
// fields and trailing data are errors) into v.
func decodeJSON(r *http.Request, limit int64, v any) error {
	data, err := readBody(r, limit)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "invalid JSON body: trailing data")
	}
	return nil
}

// readBody reads r's body, refusing more than limit bytes with 413.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, errorf(http.StatusRequestTimeout, "request body not received in time")
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "read body: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
	}
	return data, nil
}

// queryInt reads an integer query parameter (def when absent).
func queryInt(r *http.Request, name string, def int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "query %s: %q is not an integer", name, s)
	}
	return n, nil
}

// queryTime reads an RFC 3339 time query parameter (zero when absent).
func queryTime(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errorf(http.StatusBadRequest, "query %s: %q is not an RFC 3339 time", name, s)
	}
	return t, nil
}

// queryBool reads a boolean query parameter.
func queryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errorf(http.StatusBadRequest, "query %s: %q is not a boolean", name, s)
	}
	return b, nil
}

// ifVersion reads the optional ?if_version=N of a conditional write.
func ifVersion(r *http.Request) (int64, error) {
	s := r.URL.Query().Get("if_version")
	if s == "" {
		return store.AnyVersion, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, "query if_version: %q is not a version", s)
	}
	return n, nil
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
