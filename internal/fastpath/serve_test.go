package fastpath

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveWith runs Serve with answer and handler until the test ends and
// returns its address and a function that cancels it and returns Serve's
// error.
func serveWith(t *testing.T, answer Answerer, h http.Handler, srv *http.Server) (string, func() error) {
	t.Helper()
	if srv == nil {
		srv = &http.Server{}
	}
	srv.Handler = h
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Options{Answer: answer, Server: srv, ShutdownTimeout: 2 * time.Second}) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return ln.Addr().String(), stop
}

// answerAll answers every request 304.
func answerAll(dst []byte, r *Request) ([]byte, []byte, bool) {
	return append(dst, "HTTP/1.1 304 Not Modified\r\nEtag: \"e\"\r\n"...), nil, true
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// readStatus reads one response head and returns its status line.
func readStatus(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Status
}

const simple = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"

// TestShutdown: Serve returns once cancelled, closing the connections
// that wait for a request at once, while a response that net/http is
// sending on a handed-over connection runs to its end.
func TestShutdown(t *testing.T) {
	started := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "hello")
		w.(http.Flusher).Flush()
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "world")
	})
	addr, stop := serveWith(t, func(dst []byte, r *Request) ([]byte, []byte, bool) {
		if r.Path == "/fast" {
			return answerAll(dst, r)
		}
		return dst, nil, false
	}, slow, nil)

	idle := dial(t, addr)
	io.WriteString(idle, "GET /fast HTTP/1.1\r\nHost: h\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if s := readStatus(t, ibr); s != "304 Not Modified" {
		t.Fatalf("fast: %s", s)
	}
	fresh := dial(t, addr) // connected, never sends anything
	busy := dial(t, addr)
	io.WriteString(busy, simple)
	<-started

	begin := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	for _, c := range []net.Conn{idle, fresh} {
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("an idle connection got %d bytes, not closed", n)
		}
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("idle connections closed after %s", d)
	}
	body, err := io.ReadAll(busy)
	if err != nil || !strings.HasSuffix(string(body), "helloworld") {
		t.Fatalf("busy connection: %q %v", body, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// TestTimeouts: a connection idle longer than IdleTimeout, or sending a
// head slower than ReadHeaderTimeout, is closed.
func TestTimeouts(t *testing.T) {
	addr, _ := serveWith(t, answerAll, http.NotFoundHandler(),
		&http.Server{IdleTimeout: 200 * time.Millisecond, ReadHeaderTimeout: 200 * time.Millisecond})
	for name, send := range map[string]string{"idle": "", "trickling head": "GET /a HTTP/1.1\r\nHo"} {
		c := dial(t, addr)
		io.WriteString(c, send)
		begin := time.Now()
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("%s: got data", name)
		}
		if d := time.Since(begin); d < 150*time.Millisecond || d > 3*time.Second {
			t.Errorf("%s: closed after %s", name, d)
		}
	}
}

// TestAnswerPanics: a panic in Answer closes that connection only.
func TestAnswerPanics(t *testing.T) {
	addr, stop := serveWith(t, func(dst []byte, r *Request) ([]byte, []byte, bool) {
		if r.Path == "/panic" {
			panic("boom")
		}
		return answerAll(dst, r)
	}, http.NotFoundHandler(), nil)
	c := dial(t, addr)
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("got data after a panic")
	}
	d := dial(t, addr)
	io.WriteString(d, simple)
	if s := readStatus(t, bufio.NewReader(d)); s != "304 Not Modified" {
		t.Fatalf("after a panic: %s", s)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestDeclineDiscardsPartialAnswer: what an Answer that declines appended
// is not sent.
func TestDeclineDiscardsPartialAnswer(t *testing.T) {
	addr, _ := serveWith(t, func(dst []byte, r *Request) ([]byte, []byte, bool) {
		return append(dst, "HTTP/1.1 304 garbage\r\n"...), nil, false
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from net/http") }), nil)
	c := dial(t, addr)
	io.WriteString(c, simple)
	br := bufio.NewReader(c)
	if s := readStatus(t, br); s != "200 OK" {
		t.Fatalf("status %s", s)
	}
}

// TestHandedOverKeepsTCP: a connection handed over still offers net/http
// what it uses on TCP connections: ReadFrom (sendfile) and CloseWrite.
func TestHandedOverKeepsTCP(t *testing.T) {
	got := make(chan net.Conn, 1)
	srv := &http.Server{ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			got <- c
		}
	}}
	addr, _ := serveWith(t, func(dst []byte, r *Request) ([]byte, []byte, bool) { return dst, nil, false }, http.NotFoundHandler(), srv)
	c := dial(t, addr)
	io.WriteString(c, simple)
	readStatus(t, bufio.NewReader(c))
	hc := <-got
	if _, ok := hc.(io.ReaderFrom); !ok {
		t.Error("handed-over connection has no ReadFrom")
	}
	if _, ok := hc.(interface{ CloseWrite() error }); !ok {
		t.Error("handed-over connection has no CloseWrite")
	}
}

// TestManyConnections: concurrent connections, each sending pipelined
// revalidations and full requests, all get every answer in order.
func TestManyConnections(t *testing.T) {
	addr, stop := serveWith(t, func(dst []byte, r *Request) ([]byte, []byte, bool) {
		if r.IfNoneMatch == "" {
			return dst, nil, false
		}
		return answerAll(dst, r)
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" { // after a handover
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, "full")
	}), nil)
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			rev := "GET /a HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"e\"\r\n\r\n"
			var want []string
			var raw strings.Builder
			for j := range 20 {
				if i%2 == 1 && j == 10 {
					raw.WriteString(simple)
					want = append(want, "200 OK")
					continue
				}
				raw.WriteString(rev)
				want = append(want, "304 Not Modified")
			}
			io.WriteString(c, raw.String())
			br := bufio.NewReader(c)
			for _, w := range want {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err.Error()
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.Status != w {
					errs <- resp.Status + " != " + w
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestIdleWithoutBuffer: a connection idle longer than it keeps its read
// buffer still gets its next requests answered, pipelined ones included,
// and still closes after IdleTimeout.
func TestIdleWithoutBuffer(t *testing.T) {
	addr, _ := serveWith(t, answerAll, http.NotFoundHandler(), &http.Server{IdleTimeout: holdBuffer + time.Second})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	io.WriteString(c, simple)
	readStatus(t, br)
	time.Sleep(holdBuffer + 200*time.Millisecond)
	io.WriteString(c, simple+simple)
	for range 2 {
		if s := readStatus(t, br); s != "304 Not Modified" {
			t.Fatalf("after idling: %s", s)
		}
	}
	begin := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("got data")
	}
	if d := time.Since(begin); d < holdBuffer {
		t.Errorf("closed after %s idle, before IdleTimeout", d)
	}
}
