package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

// TestBurstThenRate: a key spends its burst at once, then gets one token
// per period; another key is not affected.
func TestBurstThenRate(t *testing.T) {
	c := newClock()
	l := New(Options{Rate: 2, Per: time.Minute, Burst: 3, Now: c.now})
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("call %d of the burst refused", i+1)
		}
	}
	ok, retry := l.Allow("a")
	if ok || retry != 30*time.Second {
		t.Fatalf("past the burst: ok %v, retry after %v; want refused, 30s", ok, retry)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key refused")
	}
	c.advance(29 * time.Second)
	if ok, retry := l.Allow("a"); ok || retry != time.Second {
		t.Fatalf("1s before the next token: ok %v, retry %v", ok, retry)
	}
	c.advance(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("a token gained after 30s refused")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a second token allowed after 30s")
	}
	// A long pause refills up to the burst, not beyond.
	c.advance(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("call %d after a pause refused", i+1)
		}
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a pause gave more than the burst")
	}
}

// TestBoundedKeys: many keys never hold more than MaxKeys buckets; a
// forgotten key starts with a full bucket, a recently used one keeps its
// state.
func TestBoundedKeys(t *testing.T) {
	c := newClock()
	l := New(Options{Rate: 1, Per: time.Hour, Burst: 1, MaxKeys: 100, Now: c.now})
	l.Allow("victim")
	for i := range 100000 {
		l.Allow(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
		if i%50 == 0 {
			if ok, _ := l.Allow("victim"); ok {
				t.Fatalf("the recently used key's empty bucket was refilled after %d other keys", i)
			}
		}
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("%d buckets, want 100", n)
	}
	if ok, _ := l.Allow("10.0.0.0"); !ok {
		t.Fatal("a forgotten key did not start with a full bucket")
	}
}

// TestOff: a zero rate allows everything and remembers nothing.
func TestOff(t *testing.T) {
	l := New(Options{})
	for range 1000 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatal("refused with rate 0")
		}
	}
	if l.Len() != 0 {
		t.Fatal("remembered a key with rate 0")
	}
}

// TestConcurrent: concurrent callers spend exactly the burst.
func TestConcurrent(t *testing.T) {
	c := newClock()
	l := New(Options{Rate: 1, Per: time.Hour, Burst: 50, Now: c.now})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := l.Allow("k"); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 50 {
		t.Fatalf("%d allowed, want 50", allowed)
	}
}

func TestAddrKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.7:4431", "192.0.2.7"},
		{"192.0.2.7", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:80", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"not an address", "not an address"},
	} {
		if got := AddrKey(c.in); got != c.want {
			t.Errorf("AddrKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
