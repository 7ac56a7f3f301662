package fetch

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// errRetry tells send to repeat a request that a busy source refused.
var errRetry = errors.New("retry")

// waitIfBusy handles a 503 with Retry-After (see the package
// documentation): if the retry budget, the request's context and its
// total time budget allow another attempt, it closes resp, waits and
// returns errRetry. It returns nil to let the caller handle resp as it is,
// and an error of the wait (a cancelled context) otherwise.
func (x *exchange) waitIfBusy(resp *http.Response, attempt int) error {
	if resp.StatusCode != http.StatusServiceUnavailable || attempt >= x.f.busyRetries {
		return nil
	}
	wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
	if !ok {
		return nil
	}
	wait = min(wait, x.f.maxRetryWait)
	if dl, ok := x.ctx.Deadline(); ok && time.Until(dl) <= wait {
		return nil // the wait would outlast the request's budget
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
	resp.Body.Close()
	x.f.log.Debug("fetch: source busy, retrying", "op", x.op, "wait", wait, "attempt", attempt+1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return errRetry
	case <-x.ctx.Done():
		return x.ctx.Err() // classified by fail: the caller's or the budget's
	}
}

// retryAfter parses a Retry-After value: delta-seconds or an HTTP date
// (a date in the past means no wait).
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<20)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
