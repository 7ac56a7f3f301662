package fastpath

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// States of a connection served here.
const (
	stateActive int32 = iota // reading a request head or answering
	stateIdle                // waiting for the next request
	stateClosed              // closed by shutdown
)

// conn is one connection served here until it closes or is handed over.
type conn struct {
	s      *server
	c      net.Conn
	br     *bufio.Reader
	out    []byte // answers not yet written
	remote string
	state  atomic.Int32
	wdl    time.Time // write deadline set on c, zero if none
}

// serve answers requests until the connection ends or one is declined.
func (c *conn) serve() {
	defer c.s.wg.Done()
	handed := false
	defer func() {
		if p := recover(); p != nil {
			c.s.o.Logger.Error("fastpath: panic serving a connection", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
		}
		c.s.forget(c)
		if !handed {
			c.c.Close()
			putReader(c.br)
		}
	}()
	c.br = newReader(c.c)
	c.remote = c.c.RemoteAddr().String()
	// As with net/http, the first request's head must arrive within the
	// header timeout of the connection's start; a later one's within the
	// header timeout of its first byte, which may take the idle timeout
	// to come.
	deadline := time.Now().Add(c.s.headerTimeout)
	for first := true; ; first = false {
		if !first {
			deadline = time.Time{}
		}
		if c.br.Buffered() == 0 && !c.waitRequest(first, deadline) {
			return
		}
		n, err := c.readHead(first, deadline)
		if err != nil {
			return
		}
		mark := len(c.out)
		var req Request
		var body []byte
		ok := n > 0 && parse(c.peek(n), &req)
		if ok {
			req.RemoteAddr = c.remote
			c.out, body, ok = c.s.o.Answer(c.out, &req)
		}
		if !ok {
			c.out = c.out[:mark]
			handed = c.handOver()
			return
		}
		closing := req.Close || c.s.shutting.Load()
		c.out = appendDate(c.out, time.Now())
		if body != nil {
			c.out = append(c.out, "Content-Length: "...)
			c.out = strconv.AppendInt(c.out, int64(len(body)), 10)
			c.out = append(c.out, "\r\n"...)
		}
		if closing {
			c.out = append(c.out, "Connection: close\r\n"...)
		}
		c.out = append(c.out, "\r\n"...)
		if req.Method != "HEAD" {
			c.out = append(c.out, body...)
		}
		c.br.Discard(n)
		if closing {
			if c.flush() && c.br.Buffered() > 0 {
				c.closeGracefully()
			}
			return
		}
	}
}

// waitRequest writes the pending answers and waits for the next request:
// the first until deadline, a later one at most the idle timeout. false
// if the connection is to be closed.
func (c *conn) waitRequest(first bool, deadline time.Time) bool {
	if !c.flush() {
		return false
	}
	c.state.Store(stateIdle)
	if c.s.shutting.Load() {
		c.state.CompareAndSwap(stateIdle, stateClosed)
		return false
	}
	if !first {
		deadline = time.Now().Add(c.s.idleTimeout)
	}
	err := c.wait(deadline)
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return false // closed by shutdown
	}
	return err == nil
}

// holdBuffer is how long a connection waiting for its next request keeps
// its read buffer; then it waits without one (as nginx does), so that
// idle connections cost little memory.
const holdBuffer = 100 * time.Millisecond

// wait waits until the next request's first bytes are buffered, or the
// deadline.
func (c *conn) wait(deadline time.Time) error {
	hold := time.Now().Add(holdBuffer)
	if !hold.Before(deadline) || !canWaitUnbuffered(c.c) {
		c.c.SetReadDeadline(deadline)
		_, err := c.br.Peek(1)
		return err
	}
	c.c.SetReadDeadline(hold)
	if _, err := c.br.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	putReader(c.br)
	c.br, c.out = nil, nil
	c.c.SetReadDeadline(deadline)
	err := waitReadable(c.c)
	c.br = newReader(c.c)
	if err != nil {
		return err
	}
	_, err = c.br.Peek(1)
	return err
}

// readers are the read buffers of connections that wait without one.
var readers sync.Pool

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readers.Put(br)
}

func newReader(c net.Conn) *bufio.Reader {
	if br, ok := readers.Get().(*bufio.Reader); ok {
		br.Reset(c)
		return br
	}
	return bufio.NewReaderSize(c, bufferSize)
}

// closeIfIdle closes the connection if it waits for a request.
func (c *conn) closeIfIdle() {
	if c.state.CompareAndSwap(stateIdle, stateClosed) {
		c.c.Close()
	}
}

// readHead waits until a whole request head is buffered and returns its
// length, or 0 if the request is for net/http: larger than the buffer, a
// line not ending in CRLF, a line that parse would refuse (declined), or
// cut short by the end of the stream. Empty lines before the request
// line are skipped (RFC 9112 section 2.2). The head must be complete by
// deadline (if zero: the header timeout from now). An error ends the
// connection.
//
// A request after the first is handed over only once 4 bytes of it have
// come (or it is complete): net/http waits for as many before it reads a
// request on a kept-alive connection, and closes silently if the
// connection ends before.
func (c *conn) readHead(first bool, deadline time.Time) (int, error) {
	deadlineSet := false
	for {
		buf := c.peek(c.br.Buffered())
		if k := skipEmptyLines(buf); k > 0 {
			c.br.Discard(k)
			buf = buf[k:]
		}
		n, complete := headLength(buf)
		switch {
		case complete:
			return n, nil
		case (n < 0 || len(buf) >= bufferSize || declined(buf)) && (first || len(buf) >= 4):
			return 0, nil
		}
		// Answers already computed go out before waiting for more.
		if !c.flush() {
			return 0, errWrite
		}
		if !deadlineSet {
			if deadline.IsZero() {
				deadline = time.Now().Add(c.s.headerTimeout)
			}
			c.c.SetReadDeadline(deadline)
			deadlineSet = true
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			if b := c.br.Buffered(); errors.Is(err, io.EOF) && b > 0 && (first || b >= 4) {
				return 0, nil // net/http answers a head cut short
			}
			return 0, err
		}
	}
}

// errWrite ends a connection whose answers could not be written.
var errWrite = errors.New("fastpath: write failed")

// peek returns the next n buffered bytes (n <= Buffered()).
func (c *conn) peek(n int) []byte {
	b, _ := c.br.Peek(n)
	return b
}

// flush writes the pending answers, within the write timeout: a client
// that does not read its answers does not hold the connection longer.
// The deadline is moved only when less than half the timeout is left,
// so that most writes do not touch it.
func (c *conn) flush() bool {
	if len(c.out) == 0 {
		return true
	}
	if now := time.Now(); c.wdl.Sub(now) < c.s.writeTimeout/2 {
		c.wdl = now.Add(c.s.writeTimeout)
		c.c.SetWriteDeadline(c.wdl)
	}
	_, err := c.c.Write(c.out)
	c.out = c.out[:0]
	if cap(c.out) > 64<<10 {
		c.out = nil
	}
	return err == nil
}

// handOver writes the pending answers and gives the connection, with
// what was read of it but not consumed, to the http.Server; true if it
// took it.
func (c *conn) handOver() bool {
	if !c.flush() {
		return false
	}
	c.c.SetReadDeadline(time.Time{})
	if !c.wdl.IsZero() {
		c.c.SetWriteDeadline(time.Time{})
	}
	h := &handedConn{Conn: c.c, br: c.br}
	var hc net.Conn = h
	if tcp, ok := c.c.(*net.TCPConn); ok {
		hc = tcpHandedConn{handedConn: h, tcp: tcp}
	}
	c.s.forget(c)
	return c.s.handoff.give(hc)
}

// closeGracefully closes after an answer with Connection: close when
// the client sent more than the request answered (as nginx's lingering
// close does): half-close, then read until the client closes, briefly,
// so that the kernel does not reset the connection (and lose the answer)
// because of unread bytes. A client that sent Connection: close and
// nothing more gets a plain close.
func (c *conn) closeGracefully() {
	if tcp, ok := c.c.(*net.TCPConn); ok {
		tcp.CloseWrite()
		c.c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		var buf [512]byte
		for {
			if _, err := c.c.Read(buf[:]); err != nil {
				break
			}
		}
	}
}

// date is a formatted Date header line, for one second.
type date struct {
	unix int64
	line []byte
}

var lastDate atomic.Pointer[date]

// appendDate appends the Date header line net/http would send at now.
func appendDate(dst []byte, now time.Time) []byte {
	sec := now.Unix()
	d := lastDate.Load()
	if d == nil || d.unix != sec {
		line := append([]byte("Date: "), now.UTC().AppendFormat(nil, "Mon, 02 Jan 2006 15:04:05 GMT")...)
		d = &date{unix: sec, line: append(line, "\r\n"...)}
		lastDate.Store(d)
	}
	return append(dst, d.line...)
}
