// Package listen is the endpoint side of update notifications
// (docs/notifications.md): Run keeps the endpoint's Server-Sent Events
// stream to the server open, reconnects with capped exponential backoff
// and full jitter, resumes with Last-Event-ID, caps the size of events,
// and calls OnEvent once per notification. The events' format is package
// notify's; the server's side is package notify/hub.
package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/cascade-update/cascade/internal/notify"
)

// Options configure Run. URL, Client and OnEvent are required.
type Options struct {
	// URL is the server's event stream (api.PathEvents under the server's
	// base URL).
	URL string
	// Token is the endpoint's bearer credential.
	Token string
	// Client sends the requests. It must not have a Timeout (the stream
	// is long-lived; ConnectTimeout and Idle bound it instead) and should
	// pin the server's certificate.
	Client *http.Client
	// OnEvent is called from Run's goroutine for each notification, in
	// the order received, once per notification id (among the last 256).
	// Run reads nothing while it runs, so it should hand the event
	// over (for example to the daemon's run queue) and return.
	OnEvent func(notify.Event)
	// OnConnect, if set, is called from Run's goroutine each time a
	// stream has opened (the server answered 200), before its events are
	// read: the server can be reached again, so an endpoint can send
	// what waited for it (reports queued while it was down). Like
	// OnEvent, it must return quickly.
	OnConnect func()
	// MinBackoff and MaxBackoff bound the wait before a reconnection
	// (defaults 1s and 2m): attempt n waits a random time in [0,
	// min(MaxBackoff, MinBackoff*2^n)) (full jitter), so that a
	// restarted server is not hit by every endpoint at once. n restarts
	// at 0 once a stream has carried a heartbeat or an event. A 429 or
	// 503 answer's Retry-After is waited at least (up to MaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// ConnectTimeout bounds the wait for the response headers (default
	// 30s).
	ConnectTimeout time.Duration
	// Idle is how long a stream may stay silent (no event, no heartbeat)
	// before it is taken for dead and reopened (default 90s: three of
	// the server's default heartbeats).
	Idle time.Duration
	// MaxEventSize bounds an event's data (default notify.MaxEventSize); larger
	// events are skipped (and logged), the stream goes on.
	MaxEventSize int
	// LastEventID is sent as Last-Event-ID on the first connection (a
	// daemon may keep it across restarts); later connections send the id
	// of the last event received.
	LastEventID string
	// Jitter returns a random duration in [0, d) (default math/rand/v2);
	// tests make it deterministic.
	Jitter func(d time.Duration) time.Duration
	Logger *slog.Logger // default: discard
}

func (o *Options) defaults() error {
	if o.URL == "" || o.Client == nil || o.OnEvent == nil {
		return errors.New("listen for notifications: URL, Client and OnEvent are required")
	}
	if o.Client.Timeout != 0 {
		return errors.New("listen for notifications: the HTTP client must not have a Timeout (it would cut the stream)")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MinBackoff, time.Second)
	def(&o.MaxBackoff, 2*time.Minute)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	def(&o.ConnectTimeout, 30*time.Second)
	def(&o.Idle, 90*time.Second)
	if o.MaxEventSize <= 0 {
		o.MaxEventSize = notify.MaxEventSize
	}
	if o.Jitter == nil {
		o.Jitter = func(d time.Duration) time.Duration { return rand.N(d) }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Run keeps the endpoint's event stream open and calls OnEvent for
// each notification. It reconnects after any failure (refused,
// unauthorised, server error, dropped or silent stream) and returns only
// when ctx is cancelled (nil) or the options are invalid.
func Run(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	l := &listener{o: o, last: o.LastEventID, seen: newSeenSet(256)}
	for attempt := 0; ; attempt++ {
		res := l.once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if res.healthy {
			attempt = 0
		}
		wait := max(backoff(o, attempt), min(res.retryAfter, o.MaxBackoff))
		level := slog.LevelWarn
		if errors.Is(res.err, errUnauthorized) {
			level = slog.LevelError
		}
		o.Logger.Log(ctx, level, "notification stream ended; reconnecting", "err", res.err,
			"in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is the wait before reconnection attempt n (0-based): full
// jitter over min(MaxBackoff, MinBackoff*2^n).
func backoff(o Options, n int) time.Duration {
	ceil := o.MaxBackoff
	if n < 62 {
		if d := o.MinBackoff << n; d > 0 && d < ceil {
			ceil = d
		}
	}
	return o.Jitter(ceil)
}

var errUnauthorized = errors.New("the server refused the endpoint credential")

// listener is one Run's state across connections.
type listener struct {
	o    Options
	last string // id of the last event received
	seen *seenSet
}

// result is how one connection ended.
type result struct {
	err        error
	healthy    bool          // the stream carried a heartbeat or an event
	retryAfter time.Duration // the server asked to wait this long
}

// once opens one stream and reads it until it fails or goes silent.
func (l *listener) once(ctx context.Context) result {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.o.URL, nil)
	if err != nil {
		return result{err: fmt.Errorf("open notification stream: %w", err)}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-store")
	if l.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+l.o.Token)
	}
	if l.last != "" {
		req.Header.Set("Last-Event-ID", l.last)
	}
	silent := errors.New("stream silent for too long")
	timer := time.AfterFunc(l.o.ConnectTimeout, func() { cancel(silent) })
	defer timer.Stop()
	resp, err := l.o.Client.Do(req)
	if err != nil {
		return result{err: fmt.Errorf("open notification stream: %w", causeOf(ctx, err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		res := result{err: fmt.Errorf("open notification stream: %s", resp.Status)}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			res.err = fmt.Errorf("open notification stream: %s: %w", resp.Status, errUnauthorized)
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				res.retryAfter = time.Duration(s) * time.Second
			}
		}
		return res
	}
	if l.o.OnConnect != nil {
		l.o.OnConnect()
	}
	timer.Reset(l.o.Idle)
	p := notify.NewParser(resp.Body, l.o.MaxEventSize)
	healthy, err := l.read(p, func() { timer.Reset(l.o.Idle) })
	return result{err: fmt.Errorf("read notification stream: %w", causeOf(ctx, err)), healthy: healthy}
}

// read reads events until the stream fails; alive is called after every
// line. It reports whether a heartbeat or an event arrived.
func (l *listener) read(p *notify.Parser, alive func()) (bool, error) {
	healthy := false
	for {
		ev, err := p.Next(alive)
		if err != nil {
			return healthy || p.Beats() > 1, err
		}
		healthy = true
		if ev.Skipped != "" {
			l.o.Logger.Warn("skipped a notification event", "why", ev.Skipped, "id", ev.ID)
			continue
		}
		l.last = ev.ID
		if l.seen.add(ev.Event.ID) {
			l.o.OnEvent(ev.Event)
		}
	}
}

// causeOf returns why ctx was cancelled when it was (a silent stream),
// else err.
func causeOf(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// seenSet remembers the last n ids.
type seenSet struct {
	ids  map[string]bool
	ring []string
	next int
}

func newSeenSet(n int) *seenSet {
	return &seenSet{ids: make(map[string]bool, n), ring: make([]string, n)}
}

// add records id and reports whether it is new.
func (s *seenSet) add(id string) bool {
	if s.ids[id] {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next], s.ids[id] = id, true
	s.next = (s.next + 1) % len(s.ring)
	return true
}
