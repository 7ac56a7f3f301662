// Package fastpath serves plain HTTP/1.1 for an update agent (docs/agents.md,
// "Performance"): it answers from memory the requests an Answer function
// can answer with a small fixed response, the ones every endpoint polling
// the agent sends (the conditional GET of an unchanged timestamp.json,
// answered 304 Not Modified, and the probe for a next root.json,
// answered 404), and hands every connection on which any other request
// arrives, that request still unread, to an *http.Server, which serves the
// connection from then on exactly as if it had accepted it itself.
//
// Why: net/http spends most of a 304's cost on work a revalidation does
// not need (a Request and Header map per request, a goroutine reading in
// the background while the handler runs, deadline updates); on the
// agents' hottest request that work is what separates Go from nginx.
//
// What it guarantees:
//
//   - A request is answered here only if it is simple enough that net/http
//     would read it the same way: a GET or HEAD in HTTP/1.1 of an origin-form
//     path made only of unreserved characters, sub-delimiters, ':', '@' and
//     '/' (no query, no percent-encoding: the path is then what net/http's
//     URL.Path would be), exactly one valid Host, at most one
//     If-None-Match, no body (no Content-Length, Transfer-Encoding or
//     Expect), no Upgrade, Connection only "close" or "keep-alive", every
//     header line well-formed and ending in CRLF, and the whole head
//     within one read buffer (4 KiB). Anything else, and any request
//     Answer declines, goes to the http.Server with every byte the client
//     sent, so the answer (400s and 404s included) is net/http's own. A
//     head is handed over as soon as a complete line of it rules it out
//     (an HTTP/0.9 request line, a malformed header line) or the client
//     ends the stream within it, so that net/http answers it at once as
//     it would have (TestSameAsNetHTTP, and FuzzConn against net/http).
//   - Empty lines (CRLF) before a request line are ignored (RFC 9112
//     section 2.2), also before a request handed over. This is the one
//     difference from net/http, which answers them 400 (it ignores them
//     only after a POST).
//   - Responses go out in request order, pipelined requests included:
//     the answers written here go out before the fast path waits for
//     more of the next request, and before a connection is handed over.
//   - The Server's ReadHeaderTimeout and IdleTimeout apply here too, as
//     net/http applies them: a new connection must send its first head
//     within ReadHeaderTimeout, a kept-alive one may wait IdleTimeout for
//     its next request. Its MaxHeaderBytes is never exceeded (larger heads
//     are handed over). Writing the answers given here is bounded by
//     Options.WriteTimeout, so a client that pipelines requests without
//     reading the answers holds no goroutine longer.
//   - A connection waiting for its next request gives its read buffer
//     back after holdBuffer and waits without one (on Unix), so idle
//     connections cost little more than their goroutine.
//   - Serve shuts down gracefully: it stops accepting, closes connections
//     waiting for a request, lets the others finish their answer, and
//     shuts the http.Server down (internal/httpserver).
//
// TLS is not served here: a server with a certificate uses net/http alone.
package fastpath

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cascade-update/cascade/internal/httpserver"
)

// Answerer answers a request from memory. If it can, it appends to dst
// the status line and header lines of the response, each ending in CRLF,
// sorted by name as net/http writes a handler's headers, without Date,
// Content-Length and Connection (Serve adds those, in net/http's order)
// and without the blank line, and returns the extended slice, the body
// (nil for none, as for a 304; otherwise it is sent with its
// Content-Length, and for HEAD the Content-Length alone) and true.
// Otherwise it returns dst unchanged, nil and false, and the request goes
// to the http.Server. It is called from many goroutines at once, and must
// not keep r or its strings' backing past the call other than by
// copying; the body is not modified by Serve and must stay unchanged.
type Answerer func(dst []byte, r *Request) (head, body []byte, ok bool)

// Options configure Serve. Answer and Server are required.
type Options struct {
	// Answer answers the requests that can be answered from memory.
	Answer Answerer
	// Server serves the connections handed over. Its ReadHeaderTimeout
	// (default 10s when zero) and IdleTimeout (default 120s) also bound
	// the connections served here.
	Server *http.Server
	// WriteTimeout bounds the writing of the answers given here
	// (default 10s): a client that sends requests but does not read the
	// answers is disconnected after it. (The connections handed over
	// are bound by the Server's WriteTimeout, if any.)
	WriteTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	// Logger receives start and stop records and panics of Answer
	// (default: discard).
	Logger *slog.Logger
}

// bufferSize is the read buffer of a connection: a request head must fit
// in it to be answered here.
const bufferSize = 4096

// Serve serves ln until ctx is cancelled, then shuts down gracefully. It
// returns nil after a clean shutdown, an error if accepting failed or if
// requests were still running when the shutdown timeout expired.
func Serve(ctx context.Context, ln net.Listener, o Options) error {
	if o.Answer == nil || o.Server == nil {
		ln.Close()
		return errors.New("fastpath: Answer and Server are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	s := &server{o: o, conns: map[*conn]struct{}{}, handoff: newHandoff(ln.Addr()),
		idleTimeout: o.Server.IdleTimeout, headerTimeout: o.Server.ReadHeaderTimeout, writeTimeout: o.WriteTimeout}
	if s.writeTimeout <= 0 {
		s.writeTimeout = 10 * time.Second
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = 120 * time.Second
	}
	if s.headerTimeout <= 0 {
		s.headerTimeout = 10 * time.Second
	}
	hctx, stopHTTP := context.WithCancel(ctx)
	defer stopHTTP()
	actx, stopAccept := context.WithCancel(ctx)
	defer stopAccept()
	httpErr := make(chan error, 1)
	go func() {
		err := httpserver.Run(hctx, o.Server, s.handoff, httpserver.Options{ShutdownTimeout: o.ShutdownTimeout, Logger: o.Logger})
		s.handoff.Close() // if the http.Server failed: no connection waits for it
		stopAccept()
		httpErr <- err
	}()
	acceptErr := s.accept(actx, ln)
	stopHTTP()
	s.shutdown(o.ShutdownTimeout)
	err := <-httpErr
	if acceptErr != nil {
		return acceptErr
	}
	if err != nil {
		return fmt.Errorf("fastpath: %w", err)
	}
	return nil
}

// server is one Serve call.
type server struct {
	o                                        Options
	handoff                                  *handoff
	idleTimeout, headerTimeout, writeTimeout time.Duration

	shutting atomic.Bool
	wg       sync.WaitGroup // connection goroutines
	mu       sync.Mutex
	conns    map[*conn]struct{} // connections served here
}

// accept accepts connections until ctx is cancelled (nil) or accepting
// fails (the error). It closes ln.
func (s *server) accept(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // as net/http: out of file descriptors and the like
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.o.Logger.Warn("fastpath: accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("fastpath: accept: %w", err)
		}
		backoff = 0
		cn := &conn{s: s, c: c}
		s.mu.Lock()
		s.conns[cn] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go cn.serve()
	}
}

// shutdown closes the connections waiting for a request, waits for the
// others to finish their answer for up to timeout, then closes them too.
func (s *server) shutdown(timeout time.Duration) {
	s.shutting.Store(true)
	s.mu.Lock()
	for c := range s.conns {
		c.closeIfIdle()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(timeout):
	}
	s.mu.Lock()
	for c := range s.conns {
		c.c.Close()
	}
	s.mu.Unlock()
	<-done
}

// forget drops a connection that is closed or handed over.
func (s *server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// handoff is the listener from which the http.Server accepts the
// connections handed over.
type handoff struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoff) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoff) Addr() net.Addr { return l.addr }

// give hands c to the http.Server; false if it is shut down.
func (l *handoff) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// handedConn is a connection handed over: reads return first what the
// fast path had read but not consumed.
type handedConn struct {
	net.Conn
	br *bufio.Reader // nil once drained
}

func (h *handedConn) Read(p []byte) (int, error) {
	if h.br != nil {
		if h.br.Buffered() > 0 {
			return h.br.Read(p)
		}
		h.br = nil
	}
	return h.Conn.Read(p)
}

// tcpHandedConn keeps what net/http looks for on a TCP connection:
// ReadFrom (sendfile) and CloseWrite.
type tcpHandedConn struct {
	*handedConn
	tcp *net.TCPConn
}

func (t tcpHandedConn) ReadFrom(r io.Reader) (int64, error) {
	return t.tcp.ReadFrom(r)
}

func (t tcpHandedConn) CloseWrite() error { return t.tcp.CloseWrite() }
