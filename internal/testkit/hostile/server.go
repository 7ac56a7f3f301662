package hostile

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a hostile source listening on an address. Close it when done.
type Server struct {
	// URL is the source's base URL ("http://127.0.0.7:40123/"), to list
	// as a source.
	URL string

	h    *Handler     // behaviours inside HTTP
	srv  *http.Server // idem
	ln   net.Listener // nil for Refuse
	b    Behaviour
	hits atomic.Int64 // connection-level behaviours

	quit  chan struct{}
	wg    sync.WaitGroup // connection goroutines
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	once  sync.Once
}

// Start serves a hostile source on addr ("127.0.0.7:0" picks a free port
// on that loopback address), over TLS if o.TLS is set.
//
// Refuse binds addr to reserve a port and closes it again, so that
// connections to URL are refused (another process could bind the port
// meanwhile; on a loopback address of its own that does not happen in
// practice). Reset, Hang, Garbage and HeaderFlood accept connections
// themselves; every
// other behaviour is served by an http.Server with the Handler of New.
func Start(addr string, o Options) (*Server, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("hostile source: listen: %w", err)
	}
	scheme := "http"
	if o.TLS != nil {
		scheme = "https"
	}
	s := &Server{URL: scheme + "://" + ln.Addr().String() + "/", b: o.Behaviour,
		quit: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	switch {
	case o.Behaviour == Refuse:
		ln.Close()
		return s, nil
	case o.Behaviour.ConnectionLevel():
		s.ln = ln
		if o.TLS != nil {
			s.ln = tls.NewListener(ln, o.TLS)
		}
		s.wg.Add(1)
		go s.accept()
		return s, nil
	}
	if s.h, err = New(o); err != nil {
		ln.Close()
		return nil, err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0), TLSConfig: o.TLS}
	s.wg.Add(1)
	go func() { // ends when Close shuts the server down
		defer s.wg.Done()
		if o.TLS != nil {
			s.srv.ServeTLS(ln, "", "")
		} else {
			s.srv.Serve(ln)
		}
	}()
	return s, nil
}

// Misbehaved returns how many requests (or, for the connection-level
// behaviours, connections) the source has answered in its hostile way.
func (s *Server) Misbehaved() int64 {
	if s.h != nil {
		return s.h.Misbehaved()
	}
	return s.hits.Load()
}

// Close stops the source at once: it ends waiting requests, closes the
// listener and every connection, and waits for the requests in flight and
// the goroutines it started.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.quit)
		if s.h != nil {
			s.h.Close()
		}
		if s.srv != nil {
			// No graceful shutdown: a hostile source owes its clients
			// nothing, and idle new connections would delay it by 5s.
			err = s.srv.Close()
			s.h.inflight.Wait()
			s.wg.Wait()
			return
		}
		if s.ln != nil {
			s.ln.Close()
		}
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

// accept runs the connection-level behaviours until Close.
func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.hits.Add(1)
		s.mu.Lock()
		select {
		case <-s.quit:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn misbehaves on one connection.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	switch s.b {
	case Reset:
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST rather than FIN
		}
	case Hang:
		<-s.quit
	case Garbage:
		// Read the request first, so that the client sees the reply and
		// not a connection reset while it is still writing.
		if readRequestHead(c) == nil {
			io.WriteString(c, "SSH-2.0-hostile\r\n\x00\xffnot http at all\r\n\r\n")
		}
	case HeaderFlood:
		if readRequestHead(c) == nil {
			s.flood(c)
		}
	}
}

// flood writes a status line and then header lines until the client
// hangs up or the server closes.
func (s *Server) flood(c net.Conn) {
	line := []byte("X-Hostile: " + strings.Repeat("h", 1000) + "\r\n")
	if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\n"); err != nil {
		return
	}
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(line); err != nil {
			return
		}
	}
}

// readRequestHead reads up to the blank line that ends a request head
// (at most 64 KiB, within 5 seconds).
func readRequestHead(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(io.LimitReader(c, 64<<10))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimRight(line, "\r\n") == "" {
			return nil
		}
	}
}
