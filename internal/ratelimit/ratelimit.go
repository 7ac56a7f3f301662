// Package ratelimit limits how often each key (a client address, an
// endpoint) may do something: one token bucket per key, refilled at a
// steady rate up to a burst. Memory is bounded: past MaxKeys the least
// recently used bucket is forgotten, which only ever gives its key a full
// bucket again, what a client with that many addresses has anyway. The
// management server limits enrollment per source address and report
// uploads per endpoint with it; the web console's sign-in will too.
package ratelimit

import (
	"container/list"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Options configure a Limiter.
type Options struct {
	// Rate is how many tokens a bucket gains per Per. Zero or negative:
	// the limiter allows everything.
	Rate float64
	// Per is the period of Rate (default a second).
	Per time.Duration
	// Burst is how many tokens a bucket holds, what a new key may spend
	// at once (default: Rate, at least 1).
	Burst int
	// MaxKeys bounds the buckets remembered (default 10,000).
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Limiter is a set of token buckets by key. It is safe for concurrent
// use.
type Limiter struct {
	perToken time.Duration // time to gain one token
	burst    float64
	maxKeys  int
	now      func() time.Time
	off      bool

	mu   sync.Mutex
	keys map[string]*list.Element // of *bucket
	lru  *list.List               // front: most recently used
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time // when tokens was computed
}

// New returns a Limiter.
func New(o Options) *Limiter {
	if o.Per <= 0 {
		o.Per = time.Second
	}
	if o.Burst <= 0 {
		o.Burst = max(int(math.Ceil(o.Rate)), 1)
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{burst: float64(o.Burst), maxKeys: o.MaxKeys, now: o.Now, off: o.Rate <= 0,
		keys: map[string]*list.Element{}, lru: list.New()}
	if !l.off {
		l.perToken = time.Duration(float64(o.Per) / o.Rate)
		if l.perToken <= 0 {
			l.perToken = 1
		}
	}
	return l
}

// Allow takes a token from key's bucket. When the bucket is empty it
// returns false and how long until a token is available (at least a
// second, for a Retry-After header).
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l.off {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now)
	gained := float64(now.Sub(b.at)) / float64(l.perToken)
	if gained > 0 {
		b.tokens = min(l.burst, b.tokens+gained)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) * float64(l.perToken))
	return false, max(wait.Round(time.Second), time.Second)
}

// bucket returns key's bucket, made full if new, as the most recently
// used one. l.mu held.
func (l *Limiter) bucket(key string, now time.Time) *bucket {
	if el, ok := l.keys[key]; ok {
		l.lru.MoveToFront(el)
		return el.Value.(*bucket)
	}
	if l.lru.Len() >= l.maxKeys {
		old := l.lru.Back()
		l.lru.Remove(old)
		delete(l.keys, old.Value.(*bucket).key)
	}
	b := &bucket{key: key, tokens: l.burst, at: now}
	l.keys[key] = l.lru.PushFront(b)
	return b
}

// Len is the number of buckets remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// AddrKey returns the key of a client address ("host:port" as in
// http.Request.RemoteAddr, or a bare IP): the IPv4 address, or the /64
// network of an IPv6 address (one site usually holds a whole /64, so
// keying by address would give it 2^64 buckets). An address that does
// not parse is its own key.
func AddrKey(addr string) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return addr
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
