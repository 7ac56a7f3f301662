package httpserver

import (
	"log/slog"
	"net"
	"sync"

	"github.com/cascade-update/cascade/internal/ratelimit"
)

// LimitPerAddress returns ln wrapped so that no client address (an IPv4
// address or an IPv6 /64, ratelimit.AddrKey) holds more than max
// connections at once: a connection over the limit is closed as soon as
// it is accepted, before TLS or HTTP cost anything, and the next one is
// accepted. A connection counts until it is closed. max <= 0: no limit.
// Refusals go to logger at debug level (default: discard).
func LimitPerAddress(ln net.Listener, max int, logger *slog.Logger) net.Listener {
	if max <= 0 {
		return ln
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &limitListener{Listener: ln, max: max, log: logger, open: map[string]int{}}
}

type limitListener struct {
	net.Listener
	max int
	log *slog.Logger

	mu   sync.Mutex
	open map[string]int // by address key; only keys with open connections
}

// Accept returns the next connection within the limit.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ratelimit.AddrKey(c.RemoteAddr().String())
		l.mu.Lock()
		n := l.open[key]
		if n < l.max {
			l.open[key] = n + 1
		}
		l.mu.Unlock()
		if n < l.max {
			return &countedConn{Conn: c, l: l, key: key}, nil
		}
		c.Close()
		l.log.Debug("connection refused: too many from one address", "addr", key, "limit", l.max)
	}
}

// release forgets one connection of key.
func (l *limitListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] <= 1 {
		delete(l.open, key)
	} else {
		l.open[key]--
	}
}

// countedConn is a connection that counts against its address until
// closed.
type countedConn struct {
	net.Conn
	l    *limitListener
	key  string
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}
