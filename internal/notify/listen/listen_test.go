package listen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/notify"
)

// patience bounds every wait of these tests: reaching it means a hang,
// not a slow machine. No test asserts on a duration.
const patience = 20 * time.Second

func TestBackoffFullJitterCapped(t *testing.T) {
	o := Options{MinBackoff: time.Second, MaxBackoff: 10 * time.Second}
	var ceilings []time.Duration
	o.Jitter = func(d time.Duration) time.Duration { ceilings = append(ceilings, d); return d / 2 }
	for n := range 8 {
		if got := backoff(o, n); got != ceilings[n]/2 {
			t.Fatalf("attempt %d waits %s, not the jitter's %s", n, got, ceilings[n]/2)
		}
	}
	backoff(o, 1000) // no overflow
	want := []time.Duration{1, 2, 4, 8, 10, 10, 10, 10, 10}
	for i := range want {
		if ceilings[i] != want[i]*time.Second {
			t.Fatalf("ceilings %v, want %v seconds", ceilings, want)
		}
	}
}

// script is a test server answering each stream request with the next
// of its responses; after the last, it holds the stream open.
type script struct {
	mu        sync.Mutex
	responses []http.HandlerFunc
	lastIDs   []string
	auths     []string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.lastIDs = append(s.lastIDs, r.Header.Get("Last-Event-ID"))
	s.auths = append(s.auths, r.Header.Get("Authorization"))
	var f http.HandlerFunc
	if len(s.responses) > 0 {
		f, s.responses = s.responses[0], s.responses[1:]
	}
	s.mu.Unlock()
	if f == nil {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		<-r.Context().Done()
		return
	}
	f(w, r)
}

func sse(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, body)
	}
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { http.Error(w, http.StatusText(code), code) }
}

func event(id, version string) string {
	return fmt.Sprintf("id: %s\nevent: %s\ndata: {\"id\":%q,\"versions\":{\"p\":%q}}\n\n", id, notify.EventName, id, version)
}

// TestListenRetriesAndDeduplicates: refused, unauthorised and failing
// attempts are retried; events resent on a later stream are handed over
// once; each reconnection names the last event received.
func TestListenRetriesAndDeduplicates(t *testing.T) {
	sc := &script{responses: []http.HandlerFunc{
		status(http.StatusUnauthorized),
		status(http.StatusServiceUnavailable),
		sse(": connected\n\n" + event("n1", "1")), // then the stream ends
		status(http.StatusInternalServerError),
		sse(": connected\n\n" + event("n1", "1") + event("n2", "2")), // n1 again
		sse("HTTP garbage without a blank line"),
		sse(event("n3", "3")),
	}}
	srv := httptest.NewServer(sc)
	defer srv.Close()
	events := make(chan notify.Event, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{URL: srv.URL, Token: "tok", Client: srv.Client(), LastEventID: "n0",
			OnEvent: func(e notify.Event) { events <- e }, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	}()
	var got []string
	for range 3 {
		select {
		case e := <-events:
			got = append(got, e.ID+"="+e.Versions["p"])
		case <-time.After(patience):
			t.Fatalf("events so far: %v", got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after cancellation", err)
	}
	if strings.Join(got, ",") != "n1=1,n2=2,n3=3" {
		t.Fatalf("events %v", got)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	wantIDs := []string{"n0", "n0", "n0", "n1", "n1", "n2", "n2"}
	if strings.Join(sc.lastIDs[:len(wantIDs)], ",") != strings.Join(wantIDs, ",") {
		t.Fatalf("Last-Event-ID of each request: %v, want %v", sc.lastIDs, wantIDs)
	}
	if sc.auths[0] != "Bearer tok" {
		t.Fatalf("Authorization %q", sc.auths[0])
	}
}

// TestListenOnConnect: OnConnect is called for each stream the server
// opens, before its events, and not for refused or failed attempts.
func TestListenOnConnect(t *testing.T) {
	sc := &script{responses: []http.HandlerFunc{
		status(http.StatusServiceUnavailable),
		sse(": connected\n\n" + event("n1", "1")),
		status(http.StatusInternalServerError),
		sse(event("n2", "2")),
	}}
	srv := httptest.NewServer(sc)
	defer srv.Close()
	calls := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	defer func() { cancel(); <-done }()
	go func() {
		done <- Run(ctx, Options{URL: srv.URL, Client: srv.Client(), OnConnect: func() { calls <- "connect" },
			OnEvent: func(e notify.Event) { calls <- e.ID }, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	}()
	var got []string
	for len(got) < 4 {
		select {
		case c := <-calls:
			got = append(got, c)
		case <-time.After(patience):
			t.Fatalf("calls so far: %v", got)
		}
	}
	if want := "connect,n1,connect,n2"; strings.Join(got, ",") != want {
		t.Fatalf("calls %v, want %s", got, want)
	}
}

// TestListenReopensASilentStream: a stream with no heartbeat for Idle is
// reopened.
func TestListenReopensASilentStream(t *testing.T) {
	sc := &script{responses: []http.HandlerFunc{
		func(w http.ResponseWriter, r *http.Request) {
			sse(": connected\n\n")(w, r)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // silent until the client gives up
		},
		sse(event("n1", "1")),
	}}
	srv := httptest.NewServer(sc)
	defer srv.Close()
	events := make(chan notify.Event, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	defer func() { cancel(); <-done }()
	go func() {
		done <- Run(ctx, Options{URL: srv.URL, Client: srv.Client(), Idle: 20 * time.Millisecond,
			OnEvent: func(e notify.Event) { events <- e }, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	}()
	select {
	case e := <-events:
		if e.ID != "n1" {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(patience):
		t.Fatal("the silent stream was not reopened")
	}
}

func TestListenOptions(t *testing.T) {
	ctx := context.Background()
	for _, o := range []Options{
		{Client: http.DefaultClient, OnEvent: func(notify.Event) {}},
		{URL: "http://x/", OnEvent: func(notify.Event) {}},
		{URL: "http://x/", Client: http.DefaultClient},
		{URL: "http://x/", Client: &http.Client{Timeout: time.Second}, OnEvent: func(notify.Event) {}},
	} {
		if err := Run(ctx, o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
}
