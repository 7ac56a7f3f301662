package fastpath

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// pipeListener is a listener of in-memory connections (net.Pipe), so
// that Serve runs in a synctest bubble, on its fake clock.
type pipeListener struct {
	ch      chan net.Conn
	done    chan struct{}
	once    sync.Once
	clients []net.Conn
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error { l.once.Do(func() { close(l.done) }); return nil }

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// dial connects a client to the listener.
func (l *pipeListener) dial() net.Conn {
	c, s := net.Pipe()
	l.ch <- s
	l.clients = append(l.clients, c)
	return c
}

// serveBubble runs Serve on a pipeListener (inside a synctest bubble)
// and returns it and a function that stops Serve and returns its error.
// When the test ends, the clients are closed and Serve stopped.
func serveBubble(t *testing.T, answer Answerer, h http.Handler, srv *http.Server, o Options) (*pipeListener, func() error) {
	t.Helper()
	if srv == nil {
		srv = &http.Server{}
	}
	srv.Handler = h
	ln := newPipeListener()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	o.Answer, o.Server = answer, srv
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 2 * time.Second
	}
	go func() { done <- Serve(ctx, ln, o) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() {
		for _, c := range ln.clients {
			c.Close()
		}
		stop()
	})
	return ln, stop
}

// readAnswers reads responses from br until the connection ends and
// returns their status lines, and the error that ended it.
func readAnswers(br *bufio.Reader) ([]string, error) {
	var got []string
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return got, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got = append(got, resp.Status)
	}
}

// TestAnswersWrittenBeforeReading: answers already computed go out while
// the next pipelined request is still incomplete, not when it completes
// (they were lost when the connection then timed out).
func TestAnswersWrittenBeforeReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln, stop := serveBubble(t, answerAll, http.NotFoundHandler(),
			&http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}, Options{})
		c := ln.dial()
		br := bufio.NewReader(c)
		start := time.Now()
		go io.WriteString(c, simple+simple+"GET /a HTTP/1.1\r\nHo")
		for i := range 2 {
			if s := readStatus(t, br); s != "304 Not Modified" {
				t.Fatalf("answer %d: %s", i, s)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("answers written after %s, while the next head was incomplete", d)
		}
		// The incomplete head then times out: the connection closes.
		if _, err := br.ReadByte(); err == nil {
			t.Error("got data after the header timeout")
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("closed after %s, want the header timeout (10s)", d)
		}
		c.Close()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNewConnectionHeaderTimeout: a new connection that sends nothing is
// closed after the header timeout, as with net/http, not the idle
// timeout; a kept-alive one after the idle timeout.
func TestNewConnectionHeaderTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln, stop := serveBubble(t, answerAll, http.NotFoundHandler(),
			&http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}, Options{})
		c := ln.dial()
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("got data")
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("silent new connection closed after %s, want the header timeout (10s)", d)
		}
		c.Close()

		c = ln.dial()
		br := bufio.NewReader(c)
		go io.WriteString(c, simple)
		readStatus(t, br)
		start = time.Now()
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("got data")
		}
		if d := time.Since(start); d != 120*time.Second {
			t.Errorf("idle connection closed after %s, want the idle timeout (120s)", d)
		}
		c.Close()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEmptyLinesIgnored: empty lines before a request line are ignored
// (RFC 9112 section 2.2): a trailing CRLF after a request neither gets a
// 400 nor closes the connection, and the next request is answered.
func TestEmptyLinesIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln, stop := serveBubble(t, answerAll, http.NotFoundHandler(),
			&http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}, Options{})
		c := ln.dial()
		br := bufio.NewReader(c)
		go io.WriteString(c, "\r\n"+simple+"\r\n")
		if s := readStatus(t, br); s != "304 Not Modified" {
			t.Fatalf("first: %s", s)
		}
		time.Sleep(5 * time.Second)
		go io.WriteString(c, "\r\n"+simple)
		if s := readStatus(t, br); s != "304 Not Modified" {
			t.Fatalf("after empty lines: %s", s)
		}
		c.Close()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestIncompleteHeadAnsweredAtOnce: a head that net/http refuses before
// it is complete (an HTTP/0.9 request line, a malformed header line)
// gets net/http's 400 at once, not a silent close after the header
// timeout.
func TestIncompleteHeadAnsweredAtOnce(t *testing.T) {
	for name, raw := range map[string]string{
		"HTTP/0.9":               "GET /\r\n",
		"HTTP/0.9 after answers": simple + "GET /\r\n",
		"malformed header line":  "GET /a HTTP/1.1\r\nno colon\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ln, stop := serveBubble(t, answerAll, http.NotFoundHandler(),
					&http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}, Options{})
				c := ln.dial()
				start := time.Now()
				go io.WriteString(c, raw)
				got, _ := readAnswers(bufio.NewReader(c))
				if len(got) == 0 || got[len(got)-1] != "400 Bad Request" {
					t.Errorf("answers %q, want a 400 last", got)
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("answered after %s", d)
				}
				c.Close()
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestWriteTimeout: a client that pipelines requests and never reads the
// answers is disconnected after the write timeout.
func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln, stop := serveBubble(t, answerAll, http.NotFoundHandler(), nil, Options{WriteTimeout: 5 * time.Second})
		c := ln.dial()
		start := time.Now()
		written := make(chan error, 1)
		go func() {
			_, err := io.WriteString(c, strings.Repeat(simple, 3))
			written <- err
		}()
		if err := <-written; err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		// The server gave up writing: its end is closed, nothing to read.
		c.SetReadDeadline(time.Now())
		n, err := c.Read(make([]byte, 1))
		if err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			t.Errorf("after %s the server still holds the connection (read %d bytes, %v)", time.Since(start), n, err)
		}
		c.Close()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
