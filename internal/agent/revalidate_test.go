package agent

import (
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cascade-update/cascade/internal/fastpath"
	"github.com/cascade-update/cascade/internal/testkit"
)

// TestRevalidations: the revalidations the agent answers without net/http
// (internal/fastpath) are counted, logged and load-controlled like every
// other request; what it declines is served by the handler.
func TestRevalidations(t *testing.T) {
	w := newWorld(t)
	w.publish("pattern", "1.0", 100, "a.ptn")
	var logs testkit.Buffer
	a := w.startAgent("ua-1", func(o *Options) {
		o.MaxDownloads = 4
		o.AccessLog = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	a.refresh(t, w.url)
	ts := a.url + "vendor/metadata/timestamp.json"
	first, _ := get(t, ts, nil)
	etag := first.Header.Get("ETag")

	// Answered: the 304 of the handler, counted.
	out, body, ok := a.answer(nil, &fastpath.Request{Method: "GET", Path: "/vendor/metadata/timestamp.json", IfNoneMatch: etag,
		RemoteAddr: "127.0.0.9:4000"})
	if !ok || body != nil || !strings.HasPrefix(string(out), "HTTP/1.1 304 Not Modified\r\n") || !strings.Contains(string(out), "Etag: "+etag+"\r\n") {
		t.Fatalf("answer: %v %q", ok, out)
	}
	// A missing metadata file: the handler's 404.
	out, body, ok = a.answer(nil, &fastpath.Request{Method: "GET", Path: "/vendor/metadata/99.root.json", RemoteAddr: "127.0.0.9:4000"})
	if !ok || string(body) != "Not Found\n" || !strings.HasPrefix(string(out), "HTTP/1.1 404 Not Found\r\n") {
		t.Fatalf("answer of a missing file: %v %q %q", ok, out, body)
	}
	// Declined: files to send, other ETags, the service paths, missing
	// targets (which may be pulled through).
	for _, r := range []fastpath.Request{
		{Method: "GET", Path: "/vendor/metadata/timestamp.json", IfNoneMatch: `"other"`},
		{Method: "GET", Path: "/vendor/metadata/timestamp.json"},
		{Method: "GET", Path: "/healthz", IfNoneMatch: "*"},
		{Method: "GET", Path: "/metrics", IfNoneMatch: "*"},
		{Method: "GET", Path: "/vendor/targets/components/pattern/1.0/" + strings.Repeat("0", 64) + ".a.ptn"},
		{Method: "GET", Path: "/vendor/../etc/passwd"},
	} {
		if out, body, ok := a.answer([]byte("x"), &r); ok || string(out) != "x" || body != nil {
			t.Errorf("answer(%+v) = %q, %q, %v; want declined", r, out, body, ok)
		}
	}

	// Over the network, with the client's headers in the access log. Each
	// on a new connection: the GET above was handed over to net/http
	// with its connection.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 3 {
		req, _ := http.NewRequest("GET", ts, nil)
		req.Header.Set("If-None-Match", etag)
		req.Header.Set("User-Agent", "cascade-test/1")
		req.Header.Set(RelayHeader, "ua-9")
		resp, err := fresh.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") != etag || resp.Header.Get("Date") == "" {
			t.Fatalf("revalidation: %s %v", resp.Status, resp.Header)
		}
	}
	if !strings.Contains(logs.String(), `"status":304,"bytes":0,`) || !strings.Contains(logs.String(), `"user_agent":"cascade-test/1","relay":"ua-9"`) {
		t.Errorf("access log:\n%s", logs.String())
	}
	if n := a.m.nNotModified.Load(); n != 4 {
		t.Errorf("304s counted: %d, want 4", n)
	}
	if n, _ := a.m.byCode.Load(http.StatusNotFound); n == nil || n.(*atomic.Int64).Load() != 1 {
		t.Errorf("404s counted: %v, want 1", n)
	}
	if st := a.Status(); st.Clients != 2 { // 127.0.0.9 and the test's own address
		t.Errorf("clients counted: %d, want 2", st.Clients)
	}

	// Over the download limit, the 503 comes from the handler.
	for range 4 {
		a.m.acquire(4)
	}
	resp, _ := get(t, ts, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %s %v", resp.Status, resp.Header)
	}
	for range 4 {
		a.m.release()
	}
}
