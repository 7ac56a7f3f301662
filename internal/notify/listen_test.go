package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBackoffFullJitterCapped(t *testing.T) {
	o := ListenOptions{MinBackoff: time.Second, MaxBackoff: 10 * time.Second}
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

func TestParser(t *testing.T) {
	big := strings.Repeat("x", 300)
	stream := ": connected\r\n\r\n" +
		"id: n1\r\nevent: notify-components\r\ndata: {\"id\":\"n1\",\"versions\":{\"p\":\"1\"}}\r\n\r\n" +
		": ping\n\n" +
		"event: other\ndata: {\"id\":\"x\"}\n\n" + // another type: ignored
		"id: n2\nevent: notify-components\ndata: {\"id\":\"n2\",\"versions\":{\"p\":\"" + big + "\"}}\n\n" + // too large
		"id: n3\nevent: notify-components\ndata: " + big + "\n\n" + // one line too long
		"id: n4\nevent: notify-components\ndata: {not json\n\n" +
		"id: n5\nevent: notify-components\ndata: {\"versions\":\ndata: {\"p\":\"5\"}}\n\n" + // id from the SSE id, data lines joined
		"event: notify-components\ndata: {\"versions\":{}}\n\n" + // no id at all
		"id: n6\nevent: notify-components\ndata: {\"id\":\"n6\"}\n"
	p := &parser{r: newLineReader(strings.NewReader(stream), 200), max: 200}
	type want struct {
		id, skipped string
		versions    map[string]string
	}
	for i, w := range []want{
		{id: "n1", versions: map[string]string{"p": "1"}},
		{id: "n2", skipped: "data larger than 200 bytes"},
		{id: "n3", skipped: "data larger than 200 bytes"},
		{id: "n4", skipped: "malformed data"},
		{id: "n5", versions: map[string]string{"p": "5"}},
		{skipped: "no notification id"},
	} {
		got, err := p.next(func() {})
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got.id != w.id || !strings.HasPrefix(got.skipped, w.skipped) || (w.skipped == "" && got.skipped != "") {
			t.Fatalf("event %d: %+v, want %+v", i, got, w)
		}
		if w.skipped == "" && (got.event.ID != w.id || !maps(got.event.Versions, w.versions)) {
			t.Fatalf("event %d: %+v", i, got.event)
		}
	}
	// The last event is not terminated by a blank line: never dispatched.
	if _, err := p.next(func() {}); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	if p.beats != 2 {
		t.Fatalf("%d comments counted", p.beats)
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
	return fmt.Sprintf("id: %s\nevent: %s\ndata: {\"id\":%q,\"versions\":{\"p\":%q}}\n\n", id, EventName, id, version)
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
	events := make(chan Event, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Listen(ctx, ListenOptions{URL: srv.URL, Token: "tok", Client: srv.Client(), LastEventID: "n0",
			OnEvent: func(e Event) { events <- e }, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
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
		t.Fatalf("Listen returned %v after cancellation", err)
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
		done <- Listen(ctx, ListenOptions{URL: srv.URL, Client: srv.Client(), OnConnect: func() { calls <- "connect" },
			OnEvent: func(e Event) { calls <- e.ID }, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
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
	events := make(chan Event, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	defer func() { cancel(); <-done }()
	go func() {
		done <- Listen(ctx, ListenOptions{URL: srv.URL, Client: srv.Client(), Idle: 20 * time.Millisecond,
			OnEvent: func(e Event) { events <- e }, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
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
	for _, o := range []ListenOptions{
		{Client: http.DefaultClient, OnEvent: func(Event) {}},
		{URL: "http://x/", OnEvent: func(Event) {}},
		{URL: "http://x/", Client: http.DefaultClient},
		{URL: "http://x/", Client: &http.Client{Timeout: time.Second}, OnEvent: func(Event) {}},
	} {
		if err := Listen(ctx, o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
}
