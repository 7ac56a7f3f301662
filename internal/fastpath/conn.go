package fastpath

import (
	"bufio"
	"errors"
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
	for {
		if c.br.Buffered() == 0 && !c.waitRequest() {
			return
		}
		n, err := c.readHead()
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

// waitRequest writes the pending answers and waits for the next request
// (at most the idle timeout); false if the connection is to be closed.
func (c *conn) waitRequest() bool {
	if !c.flush() {
		return false
	}
	c.state.Store(stateIdle)
	if c.s.shutting.Load() {
		c.state.CompareAndSwap(stateIdle, stateClosed)
		return false
	}
	err := c.wait(time.Now().Add(c.s.idleTimeout))
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
// length, or 0 if it is not for the fast path (larger than the buffer, or
// a line not ending in CRLF). An error ends the connection.
func (c *conn) readHead() (int, error) {
	deadline := false
	for {
		buf := c.peek(c.br.Buffered())
		n, complete := headLength(buf)
		switch {
		case complete:
			return n, nil
		case n < 0 || len(buf) >= bufferSize:
			return 0, nil
		}
		if !deadline {
			c.c.SetReadDeadline(time.Now().Add(c.s.headerTimeout))
			deadline = true
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			return 0, err
		}
	}
}

// peek returns the next n buffered bytes (n <= Buffered()).
func (c *conn) peek(n int) []byte {
	b, _ := c.br.Peek(n)
	return b
}

// flush writes the pending answers.
func (c *conn) flush() bool {
	if len(c.out) == 0 {
		return true
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
