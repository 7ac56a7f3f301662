package fastpath

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cascade-update/cascade/internal/static"
)

// FuzzConn is the connection-level differential test: a stream of
// pipelined requests (answered here, handed over, malformed, cut short),
// with empty lines between them, written in pieces split at random
// points and then half-closed, is sent through Serve and to net/http
// alone serving the same handler. What comes back must be the same
// bytes (Date aside). The only difference allowed is the documented one:
// the fast path ignores empty lines before the request lines it reads
// (those before the request it hands over included), so net/http alone
// is sent the stream without them; the ones after the handover reach
// net/http in both runs.
//
// Both servers run in a synctest bubble on in-memory connections that
// behave like TCP with half-close (no reset losing data), and every
// piece of the stream is read by the server before the next is sent, so
// each split point is seen as such.
func FuzzConn(f *testing.F) {
	files, etag, rootETag := fuzzTree(f)
	for _, seed := range [][]byte{
		{0},
		{3, 0x00, 0x11, 0x80 | 0x02, 0x04, 0x05, 0x03, 1, 0, 9, 0, 40},
		{4, 0x20, 0x13, 0x04, 0x31, 0x05, 7, 'a', 'b', 'c', 'd', 0x01, 0x22, 2, 0, 12, 0, 3},
		{2, 0xe0, 0x0b, 0x06, 0x40, 17, 1, 0, 7},
		{5, 0x10, 0x01, 0x07, 0x01, 0x0c, 0x21, 0x10, 0x02, 0x08, 0x03, 0, 0, 0},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		s := decodeStream(input, etag, rootETag)
		synctest.Test(t, func(t *testing.T) {
			var answered atomic.Int64
			answer := func(dst []byte, r *Request) ([]byte, []byte, bool) {
				out, ok := files.AppendNotModified(dst, r.Path, r.IfNoneMatch)
				var body []byte
				if !ok {
					out, body, ok = files.AppendNotFound(dst, r.Path)
				}
				if ok {
					answered.Add(1)
				}
				return out, body, ok
			}
			fastLn := newMemListener()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- Serve(ctx, fastLn, Options{Answer: answer, Server: fuzzServer(files), ShutdownTimeout: time.Second})
			}()
			plainLn := newMemListener()
			plain := fuzzServer(files)
			go plain.Serve(plainLn)
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
				plain.Close()
			}()

			fast := s.bytes(-1)
			got := memExchange(fastLn, fast, s.splits)
			k := int(answered.Load())
			plainStream := s.bytes(k)
			want := memExchange(plainLn, plainStream, nil)
			if got != want {
				t.Errorf("stream %q (%d answered by the fast path)\nthrough the fast path:\n%q\nnet/http alone, sent %q:\n%q",
					fast, k, got, plainStream, want)
			}
		})
	})
}

// fuzzServer is the http.Server of both sides of FuzzConn.
func fuzzServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10}
}

// fuzzTree is FuzzConn's tree, served by a static handler, and the ETags
// of its timestamp.json and 1.root.json.
func fuzzTree(tb testing.TB) (*static.Handler, string, string) {
	dir := tb.TempDir()
	meta := filepath.Join(dir, "vendor", "metadata")
	if err := os.MkdirAll(meta, 0o755); err != nil {
		tb.Fatal(err)
	}
	os.WriteFile(filepath.Join(meta, "timestamp.json"), []byte(`{"signed":{"_type":"timestamp","version":7}}`), 0o644)
	os.WriteFile(filepath.Join(meta, "1.root.json"), []byte(`{"signed":{"_type":"root","version":1}}`), 0o644)
	files, err := static.New(dir, static.Options{MutableMaxAge: 10 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { files.Close() })
	etagOf := func(p string) string {
		w := httptest.NewRecorder()
		files.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != 200 || w.Header().Get("ETag") == "" {
			tb.Fatalf("GET %s: %d", p, w.Code)
		}
		return w.Header().Get("ETag")
	}
	return files, etagOf(tsPath), etagOf(rootPath)
}

// fuzzStream is a decoded FuzzConn input: pieces, each after its empty
// lines, and where the stream is split.
type fuzzStream struct {
	pieces []fuzzPiece
	tail   int // empty lines after the last piece
	splits []int
}

type fuzzPiece struct {
	empty int // empty lines before the piece
	data  string
}

// bytes is the stream; if answered >= 0, without the empty lines the
// fast path skipped: it answered the first answered pieces, and skipped
// the empty lines before each of them and before the next bytes after
// them (which it handed over, or the end of the stream).
func (s *fuzzStream) bytes(answered int) []byte {
	skipping := answered >= 0
	var b bytes.Buffer
	for i, p := range s.pieces {
		if !skipping {
			b.WriteString(strings.Repeat("\r\n", p.empty))
		}
		b.WriteString(p.data)
		if i >= answered && p.data != "" {
			skipping = false
		}
	}
	if !skipping {
		b.WriteString(strings.Repeat("\r\n", s.tail))
	}
	return b.Bytes()
}

// decoder reads a FuzzConn input; past its end it reads zeros.
type decoder struct{ b []byte }

func (d *decoder) next() int {
	if len(d.b) == 0 {
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return int(c)
}

func pick[T any](d *decoder, from []T) T { return from[d.next()%len(from)] }

// Parts of the requests of FuzzConn's streams.
var (
	fuzzPaths = []string{tsPath, rootPath, "/vendor/metadata/9.root.json", "/site/metadata/timestamp.json",
		"/vendor/metadata/", tsPath + "/x", "/vendor/../vendor/metadata/timestamp.json", "/vendor/%2e%2e/x", "/healthz", tsPath + "?x=1"}
	fuzzExtras = []string{"", "", "Connection: close\r\n", "Connection: keep-alive\r\n", "User-Agent: fuzz/1\r\n",
		"X-A: b\x01\r\n", "Range: bytes=0-3\r\n", "Host: other\r\n", "Content-Length: 0\r\n", "Expect: 100-continue\r\n",
		"X-Folded: a\r\n b\r\n", "Bad Header\r\n", "If-None-Match: \"x\"\r\n", "Transfer-Encoding: chunked\r\n"}
	fuzzOthers = []string{
		"POST " + tsPath + " HTTP/1.1\r\nHost: agent\r\nContent-Length: 5\r\n\r\nhello",
		"GET " + tsPath + " HTTP/1.0\r\n\r\n",
		"GET http://agent" + tsPath + " HTTP/1.1\r\nHost: agent\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: agent\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET /\r\n",
		"GET / HTTP/1.1\r\nno colon\r\n",
		"GET " + tsPath + " HTTP/1.1\nHost: agent\n\n",
		"get " + tsPath + " HTTP/1.1\r\nHost: agent\r\n\r\n",
	}
	fuzzPathChars = "abcdefgvendormetadatimestamp.json/-_~:@!$&'()*+,;=%?#\\ \t"
)

// decodeStream turns a FuzzConn input into a stream.
func decodeStream(input []byte, etag, rootETag string) *fuzzStream {
	d := &decoder{b: input}
	s := &fuzzStream{}
	n := 1 + d.next()%8
	cut := false
	inms := []string{"", etag, rootETag, `"other"`, "*", "W/" + etag, `"x", ` + etag}
	for i := 0; i < n; i++ {
		op := d.next()
		p := fuzzPiece{empty: op >> 5}
		switch op % 8 {
		case 0, 1, 2, 3: // a simple request, which the fast path may answer
			method := pick(d, []string{"GET", "HEAD"})
			path := pick(d, fuzzPaths)
			if op%8 == 3 {
				var b strings.Builder
				b.WriteString("/vendor/")
				for range d.next() % 24 {
					b.WriteByte(fuzzPathChars[d.next()%len(fuzzPathChars)])
				}
				path = b.String()
			}
			head := method + " " + path + " HTTP/1.1\r\nHost: agent\r\n"
			if inm := pick(d, inms); inm != "" {
				head += "If-None-Match: " + inm + "\r\n"
			}
			head += pick(d, fuzzExtras)
			if op&0x10 != 0 {
				head += pick(d, fuzzExtras)
			}
			p.data = head + "\r\n"
		case 4: // requests for net/http, malformed or incomplete ones
			p.data = pick(d, fuzzOthers)
		case 5: // bytes (not starting an empty line)
			var b strings.Builder
			b.WriteByte('X')
			for range d.next() % 16 {
				b.WriteByte(byte(d.next()))
			}
			p.data = b.String()
		case 6, 7: // a request cut short: the end of the stream
			head := "GET " + tsPath + " HTTP/1.1\r\nHost: agent\r\nIf-None-Match: " + etag + "\r\n\r\n"
			p.data = head[:d.next()%len(head)]
			s.pieces = append(s.pieces, p)
			cut = true
			i = n
			continue
		}
		s.pieces = append(s.pieces, p)
	}
	if !cut { // no empty lines after a piece cut short: they could end its head
		s.tail = d.next() % 3
	}
	total := len(s.bytes(-1))
	for range d.next() % 5 {
		if total > 0 {
			s.splits = append(s.splits, (d.next()<<8|d.next())%total)
		}
	}
	return s
}

// memExchange sends stream over a new connection to ln, written in
// pieces cut at splits (each read by the server before the next is
// sent), half-closes, and returns all the server sent until it closed,
// without Date lines. It runs in a synctest bubble.
func memExchange(ln *memListener, stream []byte, splits []int) string {
	c := ln.dial()
	defer c.Close()
	pos := 0
	for _, cut := range append(sortedInts(splits), len(stream)) {
		if cut <= pos {
			continue
		}
		c.Write(stream[pos:cut])
		pos = cut
		synctest.Wait()
	}
	c.CloseWrite()
	b, _ := io.ReadAll(c)
	return dateLine.ReplaceAllString(string(b), "")
}

func sortedInts(v []int) []int {
	s := append([]int(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// memListener is a listener of memConns.
type memListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newMemListener() *memListener {
	return &memListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *memListener) Addr() net.Addr { return pipeAddr{} }

func (l *memListener) dial() *memConn {
	a, b := newMemPipe()
	l.ch <- b
	return a
}

// memConn is one end of an in-memory connection that behaves like TCP
// with half-close and without resets: writes never block (the bytes wait
// for the other end), CloseWrite makes the other end read EOF after the
// bytes written, Close ends both directions (bytes already written to
// the other end can still be read). Read deadlines work; writes never
// wait, so write deadlines have nothing to bound.
type memConn struct {
	in, out *memBuffer
	rdl     *deadline
	wdl     atomic.Pointer[time.Time]
}

func newMemPipe() (*memConn, *memConn) {
	ab, ba := newMemBuffer(), newMemBuffer()
	return &memConn{in: ba, out: ab, rdl: newDeadline()}, &memConn{in: ab, out: ba, rdl: newDeadline()}
}

func (c *memConn) Read(p []byte) (int, error) { return c.in.read(p, c.rdl) }

func (c *memConn) Write(p []byte) (int, error) {
	if t := c.wdl.Load(); t != nil && !t.IsZero() && !time.Now().Before(*t) {
		return 0, os.ErrDeadlineExceeded
	}
	return c.out.write(p)
}

func (c *memConn) CloseWrite() error { c.out.closeWrite(); return nil }

func (c *memConn) Close() error {
	c.out.closeWrite()
	c.in.closeRead()
	return nil
}

func (c *memConn) LocalAddr() net.Addr  { return pipeAddr{} }
func (c *memConn) RemoteAddr() net.Addr { return pipeAddr{} }
func (c *memConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}
func (c *memConn) SetReadDeadline(t time.Time) error  { c.rdl.set(t); return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { c.wdl.Store(&t); return nil }

// memBuffer is one direction of a memConn.
type memBuffer struct {
	mu         sync.Mutex
	data       []byte
	eof        bool          // the writer closed
	readClosed bool          // the reader closed
	changed    chan struct{} // closed and replaced on every change
}

func newMemBuffer() *memBuffer { return &memBuffer{changed: make(chan struct{})} }

func (b *memBuffer) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *memBuffer) read(p []byte, dl *deadline) (int, error) {
	for {
		b.mu.Lock()
		switch {
		case b.readClosed:
			b.mu.Unlock()
			return 0, net.ErrClosed
		case len(b.data) > 0:
			n := copy(p, b.data)
			b.data = b.data[n:]
			b.mu.Unlock()
			return n, nil
		case b.eof:
			b.mu.Unlock()
			return 0, io.EOF
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-dl.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

func (b *memBuffer) write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof || b.readClosed {
		return 0, net.ErrClosed
	}
	b.data = append(b.data, p...)
	b.notify()
	return len(p), nil
}

func (b *memBuffer) closeWrite() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.eof {
		b.eof = true
		b.notify()
	}
}

func (b *memBuffer) closeRead() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.readClosed {
		b.readClosed, b.data = true, nil
		b.notify()
	}
}

// deadline is a read deadline: a channel closed when it passes (as
// net.Pipe's).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func newDeadline() *deadline { return &deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close the channel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
