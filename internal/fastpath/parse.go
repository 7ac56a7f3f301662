package fastpath

import (
	"bytes"
	"strings"
)

// Request is a request read by the fast path. Its strings are copies; Header
// reads the request's head, which is valid only during Answer.
type Request struct {
	// Method is GET or HEAD.
	Method string
	// Path is the request target: an absolute path without query or
	// percent-encoding, equal to what net/http's URL.Path would be.
	Path string
	// IfNoneMatch is the If-None-Match header ("" if absent).
	IfNoneMatch string
	// Close reports that the client sent Connection: close.
	Close bool
	// RemoteAddr is the client's address, as net/http's RemoteAddr.
	RemoteAddr string

	head []byte // header lines, each ending in CRLF
}

// Header returns the first value of the named header (case-insensitive,
// surrounding blanks trimmed), as net/http's Header.Get would, or "".
func (r *Request) Header(name string) string {
	for rest := r.head; len(rest) > 0; {
		i := bytes.Index(rest, crlf)
		if i < 0 {
			break
		}
		k, v, _ := headerLine(rest[:i]) // parse checked every line
		rest = rest[i+2:]
		if bytes.EqualFold(k, []byte(name)) {
			return string(v)
		}
	}
	return ""
}

var crlf = []byte("\r\n")

// headLength returns the length of the request head at the start of buf
// (through the blank line) and true when it is complete; (0, false) when
// more is needed; (-1, false) when a line does not end in CRLF or the
// request starts with a blank line, which the fast path leaves to
// net/http.
func headLength(buf []byte) (int, bool) {
	pos := 0
	for {
		i := bytes.IndexByte(buf[pos:], '\n')
		if i < 0 {
			return 0, false
		}
		if i == 0 || buf[pos+i-1] != '\r' {
			return -1, false
		}
		if i == 1 {
			if pos == 0 {
				return -1, false
			}
			return pos + 2, true
		}
		pos += i + 1
	}
}

// parse reads a complete request head (from headLength) into r; false if
// the request is not one the fast path answers (see the package doc).
func parse(head []byte, r *Request) bool {
	i := bytes.Index(head, crlf)
	method, target, ok := requestLine(head[:i])
	if !ok {
		return false
	}
	r.Method = method
	r.head = head[i+2 : len(head)-2]
	hosts, inms := 0, 0
	for rest := r.head; len(rest) > 0; {
		j := bytes.Index(rest, crlf)
		line := rest[:j]
		rest = rest[j+2:]
		name, value, ok := headerLine(line)
		if !ok {
			return false
		}
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			hosts++
			if !validHost(value) {
				return false
			}
		case bytes.EqualFold(name, []byte("If-None-Match")):
			inms++
			r.IfNoneMatch = string(value)
		case bytes.EqualFold(name, []byte("Connection")):
			switch {
			case bytes.EqualFold(value, []byte("close")):
				r.Close = true
			case !bytes.EqualFold(value, []byte("keep-alive")):
				return false
			}
		case bytes.EqualFold(name, []byte("Content-Length")), bytes.EqualFold(name, []byte("Transfer-Encoding")),
			bytes.EqualFold(name, []byte("Expect")), bytes.EqualFold(name, []byte("Upgrade")):
			return false
		}
	}
	if hosts != 1 || inms > 1 {
		return false
	}
	r.Path = string(target)
	return true
}

// requestLine splits a request line the fast path answers: GET or HEAD,
// a simple path, HTTP/1.1; false for any other.
func requestLine(line []byte) (method string, target []byte, ok bool) {
	m, rest, ok1 := bytes.Cut(line, []byte{' '})
	target, proto, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || string(proto) != "HTTP/1.1" || !simplePath(target) {
		return "", nil, false
	}
	switch string(m) {
	case "GET":
		return "GET", target, true
	case "HEAD":
		return "HEAD", target, true
	}
	return "", nil, false
}

// declined reports whether the complete lines at the start of an
// incomplete head (one without its blank line yet) already make it a
// request the fast path does not answer: a request line other than
// requestLine's or a malformed header line. net/http answers such a
// head at once (400 for HTTP/0.9's "GET /", for example), so the fast
// path hands it over at once rather than waiting for the rest.
func declined(buf []byte) bool {
	i := bytes.Index(buf, crlf)
	if i < 0 {
		return false
	}
	if _, _, ok := requestLine(buf[:i]); !ok {
		return true
	}
	for rest := buf[i+2:]; ; {
		j := bytes.Index(rest, crlf)
		if j < 0 {
			return false
		}
		if _, _, ok := headerLine(rest[:j]); !ok {
			return true
		}
		rest = rest[j+2:]
	}
}

// skipEmptyLines returns the number of bytes of the empty lines (CRLF)
// at the start of buf, which a server ignores before a request line
// (RFC 9112 section 2.2).
func skipEmptyLines(buf []byte) int {
	n := 0
	for len(buf) >= n+2 && buf[n] == '\r' && buf[n+1] == '\n' {
		n += 2
	}
	return n
}

// headerLine splits a header line into its name and its value with
// surrounding blanks trimmed; false if the line is not a well-formed
// header: a continuation (obsolete line folding), a name that is not a
// token or is followed by a blank, or a control character in the value.
func headerLine(line []byte) (name, value []byte, ok bool) {
	name, value, found := bytes.Cut(line, []byte{':'})
	if !found || len(name) == 0 {
		return nil, nil, false
	}
	for _, c := range name {
		if !isToken(c) {
			return nil, nil, false
		}
	}
	value = bytes.Trim(value, " \t")
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

// simplePath reports whether target is an origin-form path of unreserved
// characters, sub-delimiters, ':', '@' and '/' only (RFC 3986), which
// net/http's URL parsing leaves as it is.
func simplePath(target []byte) bool {
	if len(target) == 0 || target[0] != '/' {
		return false
	}
	for _, c := range target {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHost reports whether a Host value is a plain name or address with
// an optional port: letters, digits and ".-_:[]" only, and not empty.
func validHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']':
		default:
			return false
		}
	}
	return true
}

// isToken reports whether c may appear in a header name (RFC 9110 tchar).
func isToken(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
