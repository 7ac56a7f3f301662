package hub

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// resendLog is how many of the last events written on a stream are kept
// for a stream that resumes it with Last-Event-ID.
const resendLog = 16

// conn is one endpoint's open stream.
type conn struct {
	ep  Endpoint
	max int // queue bound

	mu     sync.Mutex
	queue  []*frame
	queued map[string]bool // ids queued or written on this stream: each is sent once
	log    []*frame        // the last resendLog frames written

	wake chan struct{} // capacity 1: the queue is not empty
	done chan struct{} // closed when the stream is replaced, dropped or the hub stops
	once sync.Once
}

// newConn returns the stream of ep; last is the id of the event the
// endpoint received last, never sent again on this stream.
func newConn(ep Endpoint, max int, last string) *conn {
	c := &conn{ep: ep, max: max, queued: map[string]bool{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if last != "" {
		c.queued[last] = true
	}
	return c
}

func (c *conn) close() { c.once.Do(func() { close(c.done) }) }

// enqueue queues f unless this stream already has it. A stream whose
// queue is full is closed: its endpoint reconnects and gets what is
// still pending from the store.
func (c *conn) enqueue(f *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queued[f.id] {
		return
	}
	if len(c.queue) >= c.max {
		c.close()
		return
	}
	c.queued[f.id] = true
	c.queue = append(c.queue, f)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take empties the queue.
func (c *conn) take() []*frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

// written records that f is written to the stream.
func (c *conn) written(f *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.log) == resendLog {
		c.log = slices.Delete(c.log, 0, 1)
	}
	c.log = append(c.log, f)
}

// sentLog returns the last frames written.
func (c *conn) sentLog() []*frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// Handler returns h as an http.Handler (it is one).
func (h *Hub) Handler() http.Handler { return h }

// ServeHTTP serves an endpoint's event stream (GET). The endpoint must be
// in the request context (WithEndpoint): a request without one is 401. A
// new stream of an endpoint replaces its previous one. While Run is not
// running it answers 503. The stream ends when the client goes, the
// endpoint is disconnected or replaced, a write times out, or Run stops.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep, ok := EndpointFrom(r.Context())
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cascade"`)
		http.Error(w, "endpoint authentication required", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	last := r.Header.Get("Last-Event-ID")
	c := newConn(ep, h.o.QueueSize, last)
	prev, ok := h.attach(c)
	if !ok {
		w.Header().Set("Retry-After", "10")
		http.Error(w, "notification hub not running", http.StatusServiceUnavailable)
		return
	}
	defer h.detach(c)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	s := &stream{w: w, rc: http.NewResponseController(w), timeout: h.o.WriteTimeout}
	if s.write([]byte(": connected\n\n")) != nil {
		return
	}
	h.resume(c, prev, last)
	// Resuming a stream this process did not serve (its previous server
	// process stopped or died, or the endpoint moved): the store says what
	// that stream wrote after last.
	resumeFromStore := last != "" && len(prev) == 0
	if err := h.queuePending(r.Context(), c, last, resumeFromStore); err != nil {
		h.log.Warn("read pending notifications", "endpoint", ep.ID, "err", err)
		return // the endpoint reconnects and the read is tried again
	}
	h.serveStream(r.Context(), s, c)
}

// attach makes c the endpoint's stream, closing the previous one, and
// returns the frames written on the previous stream (for resumption). It
// fails when Run is not running.
func (h *Hub) attach(c *conn) ([]*frame, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		return nil, false
	}
	var prev []*frame
	if old := h.conns[c.ep.ID]; old != nil {
		old.close()
		prev = old.sentLog()
	} else if rec, ok := h.recent[c.ep.ID]; ok {
		prev = rec.log
		delete(h.recent, c.ep.ID)
	}
	h.conns[c.ep.ID] = c
	delete(h.left, c.ep.ID)
	return prev, true
}

// detach removes c (unless it was replaced) and remembers what it wrote
// and, for an agent that went while Run runs, that it went (see
// Options.ReconnectGrace).
func (h *Hub) detach(c *conn) {
	c.close()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.ep.ID] != c {
		return
	}
	delete(h.conns, c.ep.ID)
	if h.running && c.ep.Role == store.RoleAgent {
		h.left[c.ep.ID] = true
	}
	if log := c.sentLog(); len(log) > 0 {
		h.recent[c.ep.ID] = sentRecord{log: log, closed: h.o.Now()}
	}
}

// resume queues again the frames the previous stream wrote after the
// event the endpoint last received (all of them when that event is not
// among them): they may have been lost with the connection. Without
// Last-Event-ID (a new listener) nothing is resent.
func (h *Hub) resume(c *conn, prev []*frame, last string) {
	if last == "" || len(prev) == 0 {
		return
	}
	start := 0
	for i, f := range prev {
		if f.id == last {
			start = i + 1
		}
	}
	for _, f := range prev[start:] {
		c.enqueue(f)
	}
}

// queuePending queues the endpoint's pending deliveries, after (with
// delivered) those recorded delivered after last and not finished, the
// newest resendLog of them: that stream was served by another process
// (or this one before it restarted) and they may have been lost with
// it. The one the endpoint names as its last event was received already
// (the record of its delivery was lost): it is recorded delivered
// instead.
func (h *Hub) queuePending(ctx context.Context, c *conn, last string, delivered bool) error {
	sctx, cancel := context.WithTimeout(ctx, h.o.StoreTimeout)
	defer cancel()
	var again []store.Notification
	var err error
	if delivered {
		offStack(func() { again, err = h.st.DeliveredAfter(sctx, c.ep.ID, last, resendLog) })
		if err != nil {
			return err
		}
	}
	ns, err := h.pendingOf(sctx, c.ep.ID)
	if err != nil {
		return err
	}
	ns = append(again, ns...)
	for _, n := range ns {
		if n.ID == last {
			h.markDelivered(c.ep, n.ID)
			continue
		}
		f, err := h.frameOf(n)
		if err != nil {
			h.log.Warn("skip notification", "notification", n.ID, "err", err)
			continue
		}
		c.enqueue(f)
	}
	return nil
}

// serveStream writes c's events and heartbeats until the stream ends.
func (h *Hub) serveStream(ctx context.Context, s *stream, c *conn) {
	beat := time.NewTicker(h.o.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			return
		case <-beat.C:
			if s.write([]byte(": ping\n\n")) != nil {
				return
			}
		case <-c.wake:
			select {
			case <-c.done: // replaced meanwhile: the new stream sends them
				return
			default:
			}
			fs := c.take()
			for _, f := range fs {
				c.written(f) // before the write: a failed one is resent on resumption
			}
			if s.write(nil, fs...) != nil {
				return
			}
			for _, f := range fs {
				h.markDelivered(c.ep, f.id)
			}
		}
	}
}

// How long the records of events written to clients may wait: until no
// client event was written for clientRecordQuiet, or at most
// clientRecordMax after the oldest waiting one. A burst of events (a
// notification released to 100,000 clients) is written first and
// recorded after, instead of the database's updates taking the CPU the
// writes need. The records of agents are written at once: an agent not
// recorded delivered soon counts as offline (see Options.ReconnectGrace).
const (
	clientRecordQuiet = 250 * time.Millisecond
	clientRecordMax   = 5 * time.Second
)

// markDelivered queues the record that the event of notification id
// was written to the endpoint's stream; recordDeliveries writes such
// records in batches.
func (h *Hub) markDelivered(ep Endpoint, id string) {
	h.markMu.Lock()
	if ep.Role == store.RoleAgent {
		h.marks[id] = append(h.marks[id], ep.ID)
	} else {
		now := time.Now()
		if len(h.clientMarks) == 0 {
			h.clientFirst = now
		}
		h.clientLast = now
		h.clientMarks[id] = append(h.clientMarks[id], ep.ID)
	}
	h.markMu.Unlock()
	select {
	case h.markKick <- struct{}{}:
	default:
	}
}

// recordDeliveries writes the queued delivery records until ctx is
// cancelled, then once more, all of them. It takes everything queued
// while it was writing, so batches grow with the load: one transaction
// per notification and batch, where a write per stream would keep a
// database (SQLite's single writer above all) busy long after the
// events went out, delaying reports and releases. The records of
// clients wait for the end of a burst (clientRecordQuiet). A delivery
// already finished (the endpoint reported before its record) is left
// alone; a record that fails leaves the delivery pending, to be sent
// again when the endpoint reconnects.
func (h *Hub) recordDeliveries(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.flushDeliveries(ctx, true)
			return
		case <-h.markKick:
		case <-t.C:
		}
		h.flushDeliveries(ctx, false)
		if wait := h.clientsDue(); wait > 0 {
			t.Reset(wait)
		}
	}
}

// clientsDue returns how long the queued client records wait yet (0:
// none is queued, or they are due).
func (h *Hub) clientsDue() time.Duration {
	h.markMu.Lock()
	defer h.markMu.Unlock()
	if len(h.clientMarks) == 0 {
		return 0
	}
	wait := min(time.Until(h.clientLast.Add(clientRecordQuiet)), time.Until(h.clientFirst.Add(clientRecordMax)))
	return max(wait, time.Millisecond)
}

// flushDeliveries writes the queued records of agents, and those of
// clients when they are due (or all is set). The events were written:
// a shutdown that begins meanwhile does not cancel their records (each
// write is bounded by StoreTimeout), or the delivery would stay pending
// and the agent it went to would count as offline once the server is
// back.
func (h *Hub) flushDeliveries(ctx context.Context, all bool) {
	ctx = context.WithoutCancel(ctx)
	h.markMu.Lock()
	marks := h.marks
	h.marks = map[string][]string{}
	var clients map[string][]string
	if len(h.clientMarks) > 0 {
		now := time.Now()
		if all || !now.Before(h.clientLast.Add(clientRecordQuiet)) || !now.Before(h.clientFirst.Add(clientRecordMax)) {
			clients = h.clientMarks
			h.clientMarks = map[string][]string{}
		}
	}
	h.markMu.Unlock()
	for _, m := range []map[string][]string{marks, clients} {
		for id, eps := range m {
			sctx, cancel := context.WithTimeout(ctx, h.o.StoreTimeout)
			_, err := h.st.MarkDelivered(sctx, id, eps)
			cancel()
			if err != nil {
				h.log.Warn("record notification delivered", "notification", id, "endpoints", len(eps), "err", err)
			}
		}
	}
}

// offStack runs f on a new goroutine and waits for it. Streams read the
// store through it: the database driver's deep call chains (SQLite's
// translated C above all) would otherwise grow the stack of every
// stream's long-lived goroutine for good; 10,000 idle streams take a
// quarter less memory this way (bench/notify).
func offStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

// stream writes to one response within a deadline per write.
type stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// write writes b and the frames, then flushes, within the write
// timeout.
func (s *stream) write(b []byte, fs ...*frame) error {
	// Not every ResponseWriter supports deadlines; the heartbeat then
	// still detects a dead connection through the kernel's send buffer.
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if len(b) > 0 {
		if _, err := s.w.Write(b); err != nil {
			return err
		}
	}
	for _, f := range fs {
		if _, err := s.w.Write(f.bytes); err != nil {
			return err
		}
	}
	if err := s.rc.Flush(); err != nil {
		return err
	}
	_ = s.rc.SetWriteDeadline(time.Time{})
	return nil
}
