package main

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// link paces every response of a server to a total rate: the one link
// (the site's WAN link, or the server's uplink) that all endpoints
// updating from that server share. It is the generic cell rate
// algorithm: tat is when everything reserved so far will have been sent.
type link struct {
	nsPerByte float64
	burst     time.Duration

	mu  sync.Mutex
	tat time.Time
}

// linkChunk is the largest write paced at once.
const linkChunk = 32 << 10

// newLink returns a link of rate bytes per second.
func newLink(rate int64) *link {
	ns := 1e9 / float64(rate)
	return &link{nsPerByte: ns, burst: time.Duration(ns * linkChunk)}
}

// wait reserves n bytes of the link and waits until they may be sent.
func (l *link) wait(ctx context.Context, n int) error {
	l.mu.Lock()
	now := time.Now()
	if l.tat.Before(now) {
		l.tat = now
	}
	l.tat = l.tat.Add(time.Duration(float64(n) * l.nsPerByte))
	d := l.tat.Sub(now) - l.burst
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wrap returns h with its responses paced by the link.
func (l *link) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&pacedWriter{ResponseWriter: rw, l: l, ctx: r.Context()}, r)
	})
}

// pacedWriter sends a response through the link, in chunks.
type pacedWriter struct {
	http.ResponseWriter
	l   *link
	ctx context.Context
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n := min(len(b)-done, linkChunk)
		if err := p.l.wait(p.ctx, n); err != nil {
			return done, err
		}
		k, err := p.ResponseWriter.Write(b[done : done+n])
		done += k
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// ReadFrom copies through Write, so that a file is paced too.
func (p *pacedWriter) ReadFrom(src io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{p}, src, make([]byte, linkChunk))
}

// Unwrap lets http.ResponseController reach the server's writer.
func (p *pacedWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }
