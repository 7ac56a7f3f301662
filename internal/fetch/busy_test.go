package fetch

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// busyServer answers 503 with the given Retry-After to the first n
// requests, then body. It counts the requests.
func busyServer(t *testing.T, n int64, retryAfter string, body string) (string, *atomic.Int64) {
	var count atomic.Int64
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if count.Add(1) <= n {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(body))
	})
	return srv.URL + "/x", &count
}

func TestBusyRetriedWithinBudget(t *testing.T) {
	u, count := busyServer(t, 2, "0", "data")
	got, err := New(testOptions()).Bytes(context.Background(), u, 10)
	if err != nil || string(got) != "data" || count.Load() != 3 {
		t.Fatalf("got %q, %v after %d requests; want data after 3", got, err, count.Load())
	}
}

func TestBusyBeyondBudgetIsHTTPError(t *testing.T) {
	u, count := busyServer(t, 100, "0", "data")
	_, err := New(testOptions()).Bytes(context.Background(), u, 10)
	wantClass(t, err, failure.HTTPError)
	var he *metadata.ErrDownloadHTTP
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("chain %v lacks ErrDownloadHTTP{503}", err)
	}
	if count.Load() != 3 {
		t.Fatalf("%d requests, want 3 (one and two retries)", count.Load())
	}
}

func TestBusyRetryBudgetOptions(t *testing.T) {
	for _, tc := range []struct {
		retries int
		want    int64
	}{{-1, 1}, {5, 6}} {
		u, count := busyServer(t, 100, "0", "data")
		o := testOptions()
		o.BusyRetries = tc.retries
		_, err := New(o).Bytes(context.Background(), u, 10)
		wantClass(t, err, failure.HTTPError)
		if count.Load() != tc.want {
			t.Errorf("BusyRetries %d: %d requests, want %d", tc.retries, count.Load(), tc.want)
		}
	}
}

// TestBusyWithoutRetryAfter: a plain 503 is an HTTP error at once.
func TestBusyWithoutRetryAfter(t *testing.T) {
	for _, ra := range []string{"", "soon", "-3"} {
		u, count := busyServer(t, 1, ra, "data")
		_, err := New(testOptions()).Bytes(context.Background(), u, 10)
		wantClass(t, err, failure.HTTPError)
		if count.Load() != 1 {
			t.Errorf("Retry-After %q: %d requests, want 1", ra, count.Load())
		}
	}
}

// TestBusyWaitIsCapped: a Retry-After of an hour is waited for only
// MaxRetryWait, and the file download then succeeds.
func TestBusyWaitIsCapped(t *testing.T) {
	data := []byte("target content")
	u, count := busyServer(t, 1, "3600", string(data))
	o := testOptions()
	o.MaxRetryWait = time.Millisecond
	dst := t.TempDir() + "/t"
	if err := New(o).File(context.Background(), u, dst, Want{Length: int64(len(data)), SHA256: digest(data)}); err != nil {
		t.Fatal(err)
	}
	if count.Load() != 2 {
		t.Fatalf("%d requests, want 2", count.Load())
	}
}

// TestBusyWaitBeyondBudget: a wait that would outlast the request's total
// budget is not made: the 503 counts at once.
func TestBusyWaitBeyondBudget(t *testing.T) {
	u, count := busyServer(t, 1, "3", "data")
	o := testOptions()
	o.Timeout = time.Second
	_, err := New(o).Bytes(context.Background(), u, 10)
	wantClass(t, err, failure.HTTPError)
	if count.Load() != 1 {
		t.Fatalf("%d requests, want 1", count.Load())
	}
}

// TestBusyWaitCancelled: the caller cancelling during the wait is a local
// failure, not the source's.
func TestBusyWaitCancelled(t *testing.T) {
	refused := make(chan struct{}, 1)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusServiceUnavailable)
		refused <- struct{}{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	o := testOptions()
	o.MaxRetryWait = time.Hour
	o.Timeout = 2 * time.Hour
	done := make(chan error, 1)
	go func() { _, err := New(o).Bytes(ctx, srv.URL+"/x", 10); done <- err }()
	<-refused
	cancel()
	err := <-done
	wantClass(t, err, failure.Local)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v is not context.Canceled", err)
	}
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{" 7 ", 7 * time.Second, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{strconv.Itoa(1 << 30), time.Duration(1<<20) * time.Second, true},
	} {
		got, ok := retryAfter(tc.v, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %s, %v; want %s, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func digest(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
