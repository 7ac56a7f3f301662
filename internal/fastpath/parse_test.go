package fastpath

import (
	"bufio"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestParse: every rule of the package doc that decides whether a
// request head is answered here.
func TestParse(t *testing.T) {
	const base = "GET /vendor/metadata/timestamp.json HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
	tests := []struct {
		name, head string
		ok         bool
		want       Request // checked when ok
	}{
		{"plain GET", base + "If-None-Match: \"abc\"\r\n\r\n", true,
			Request{Method: "GET", Path: "/vendor/metadata/timestamp.json", IfNoneMatch: `"abc"`}},
		{"HEAD", "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n", true, Request{Method: "HEAD", Path: "/a"}},
		{"no If-None-Match", base + "\r\n", true, Request{Method: "GET", Path: "/vendor/metadata/timestamp.json"}},
		{"names are case-insensitive, values trimmed", "GET /a HTTP/1.1\r\nhost: h\r\nif-none-match: \t\"x\" \t\r\nCONNECTION: Close\r\n\r\n", true,
			Request{Method: "GET", Path: "/a", IfNoneMatch: `"x"`, Close: true}},
		{"keep-alive", base + "Connection: keep-alive\r\n\r\n", true, Request{Method: "GET", Path: "/vendor/metadata/timestamp.json"}},
		{"other headers ignored", base + "User-Agent: x/1 (y)\r\nAccept: */*\r\nCascade-Relay: ua-1\r\n\r\n", true,
			Request{Method: "GET", Path: "/vendor/metadata/timestamp.json"}},
		{"sub-delimiters in the path", "GET /a/b-c_d.e~f!$&'()*+,;=:@ HTTP/1.1\r\nHost: h\r\n\r\n", true,
			Request{Method: "GET", Path: "/a/b-c_d.e~f!$&'()*+,;=:@"}},
		{"IPv6 host", "GET /a HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", true, Request{Method: "GET", Path: "/a"}},

		{"POST", "POST /a HTTP/1.1\r\nHost: h\r\n\r\n", false, Request{}},
		{"lower-case method", "get /a HTTP/1.1\r\nHost: h\r\n\r\n", false, Request{}},
		{"HTTP/1.0", "GET /a HTTP/1.0\r\nHost: h\r\n\r\n", false, Request{}},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\n", false, Request{}},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", false, Request{}},
		{"absolute form", "GET http://h/a HTTP/1.1\r\nHost: h\r\n\r\n", false, Request{}},
		{"query", "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", false, Request{}},
		{"fragment", "GET /a#x HTTP/1.1\r\nHost: h\r\n\r\n", false, Request{}},
		{"percent-encoding", "GET /%2e%2e/a HTTP/1.1\r\nHost: h\r\n\r\n", false, Request{}},
		{"backslash", "GET /a\\b HTTP/1.1\r\nHost: h\r\n\r\n", false, Request{}},
		{"double space", "GET  /a HTTP/1.1\r\nHost: h\r\n\r\n", false, Request{}},
		{"trailing space", "GET /a HTTP/1.1 \r\nHost: h\r\n\r\n", false, Request{}},
		{"non-ASCII path", "GET /\xc3\xa4 HTTP/1.1\r\nHost: h\r\n\r\n", false, Request{}},
		{"no Host", "GET /a HTTP/1.1\r\n\r\n", false, Request{}},
		{"two Hosts", "GET /a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", false, Request{}},
		{"empty Host", "GET /a HTTP/1.1\r\nHost: \r\n\r\n", false, Request{}},
		{"Host with a blank", "GET /a HTTP/1.1\r\nHost: a b\r\n\r\n", false, Request{}},
		{"Host with userinfo", "GET /a HTTP/1.1\r\nHost: u@h\r\n\r\n", false, Request{}},
		{"two If-None-Match", base + "If-None-Match: \"a\"\r\nIf-None-Match: \"b\"\r\n\r\n", false, Request{}},
		{"Content-Length", base + "Content-Length: 0\r\n\r\n", false, Request{}},
		{"Transfer-Encoding", base + "Transfer-Encoding: chunked\r\n\r\n", false, Request{}},
		{"Expect", base + "Expect: 100-continue\r\n\r\n", false, Request{}},
		{"Upgrade", base + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false, Request{}},
		{"Connection list", base + "Connection: close, te\r\n\r\n", false, Request{}},
		{"obsolete line folding", base + "X-A: b\r\n c\r\n\r\n", false, Request{}},
		{"blank before colon", base + "X-A : b\r\n\r\n", false, Request{}},
		{"no colon", base + "X-A\r\n\r\n", false, Request{}},
		{"empty name", base + ": b\r\n\r\n", false, Request{}},
		{"control character in a value", base + "X-A: b\x01c\r\n\r\n", false, Request{}},
		{"DEL in a value", base + "X-A: b\x7f\r\n\r\n", false, Request{}},
		{"CR in a value", base + "X-A: b\rc\r\n\r\n", false, Request{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, complete := headLength([]byte(tt.head))
			if !complete || n != len(tt.head) {
				t.Fatalf("headLength = %d, %v; want %d, true", n, complete, len(tt.head))
			}
			var r Request
			ok := parse([]byte(tt.head), &r)
			if ok != tt.ok {
				t.Fatalf("parse = %v, want %v", ok, tt.ok)
			}
			r.head, tt.want.head = nil, nil
			if ok && !reflect.DeepEqual(r, tt.want) {
				t.Fatalf("parse = %+v, want %+v", r, tt.want)
			}
		})
	}
}

// TestHeadLength: incomplete heads wait for more, heads with a line not
// ending in CRLF (or a leading blank line) are left to net/http, and a
// complete head ends at its blank line, whatever follows.
func TestHeadLength(t *testing.T) {
	tests := []struct {
		buf      string
		n        int
		complete bool
	}{
		{"", 0, false},
		{"GET / HTTP/1.1", 0, false},
		{"GET / HTTP/1.1\r\nHost: h\r\n", 0, false},
		{"GET / HTTP/1.1\r\nHost: h\r\n\r", 0, false},
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 27, true},
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n", 27, true},
		{"GET / HTTP/1.1\nHost: h\n\n", -1, false},
		{"GET / HTTP/1.1\r\nHost: h\n\r\n", -1, false},
		{"\r\nGET / HTTP/1.1\r\n\r\n", -1, false},
		{"\n", -1, false},
	}
	for _, tt := range tests {
		n, complete := headLength([]byte(tt.buf))
		if n != tt.n || complete != tt.complete {
			t.Errorf("headLength(%q) = %d, %v; want %d, %v", tt.buf, n, complete, tt.n, tt.complete)
		}
	}
}

// TestRequestHeader: Header finds the first value of a header by any
// case, trimmed, and "" for an absent one.
func TestRequestHeader(t *testing.T) {
	head := "GET /a HTTP/1.1\r\nHost: h\r\nuser-agent:  cascade/1 \r\nCascade-Relay: ua-1\r\nCascade-Relay: ua-2\r\n\r\n"
	var r Request
	if !parse([]byte(head), &r) {
		t.Fatal("parse failed")
	}
	for name, want := range map[string]string{"User-Agent": "cascade/1", "cascade-relay": "ua-1", "Accept": "", "Host": "h"} {
		if got := r.Header(name); got != want {
			t.Errorf("Header(%q) = %q, want %q", name, got, want)
		}
	}
	if strings.Contains(r.Header("Host"), "\r") {
		t.Error("value holds CR")
	}
}

// FuzzParse: a head that the fast path accepts is read by net/http the
// same way (method, path, If-None-Match, Connection: close, one Host and
// no body), and parsing never panics.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"GET /vendor/metadata/timestamp.json HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"abc\"\r\n\r\n",
		"HEAD /a HTTP/1.1\r\nhost: h:80\r\nconnection: close\r\nUser-Agent: x\r\n\r\n",
		"GET /a;b=c/@:x HTTP/1.1\r\nHost: [::1]\r\nIf-None-Match:  W/\"x\", *\t\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nX: \xff\r\n\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, head string) {
		n, complete := headLength([]byte(head))
		if !complete {
			return
		}
		var r Request
		if !parse([]byte(head[:n]), &r) {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head[:n])))
		if err != nil {
			t.Fatalf("accepted, but net/http fails: %v", err)
		}
		if req.Method != r.Method || req.URL.Path != r.Path || req.URL.RawQuery != "" || req.Header.Get("If-None-Match") != r.IfNoneMatch ||
			req.Close != r.Close || len(req.Header.Values("Host")) != 0 || req.Host == "" || req.ContentLength != 0 {
			t.Fatalf("net/http reads %s %q (query %q) If-None-Match %q close %v host %q length %d; fast path %+v",
				req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Get("If-None-Match"), req.Close, req.Host, req.ContentLength, r)
		}
	})
}
