package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// Handler serves an endpoint's event stream (GET). The endpoint must be
// in the request context (WithEndpoint): requests without one get 401. A
// new stream of an endpoint replaces its previous one.
func (h *Hub) Handler() http.Handler { return http.HandlerFunc(h.serve) }

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) {
	ep, ok := endpointFrom(r.Context())
	if !ok {
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	c := &conn{ep: ep, events: make(chan store.Notification, 16), done: make(chan struct{})}
	h.attach(c)
	defer h.detach(c)
	s := &stream{h: h, w: w, rc: http.NewResponseController(w), ep: ep, sent: map[string]bool{}}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := s.write(": connected\n\n"); err != nil {
		return
	}
	pending, err := h.o.Store.PendingNotifications(r.Context(), ep.ID)
	if err != nil {
		h.log.Warn("pending notifications", "endpoint", ep.ID, "error", err)
		return
	}
	for _, n := range pending {
		if s.send(r, n) != nil {
			return
		}
	}
	beat := time.NewTicker(h.o.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case n := <-c.events:
			if s.send(r, n) != nil {
				return
			}
		case <-beat.C:
			if s.write(": ping\n\n") != nil {
				return
			}
		case <-c.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (h *Hub) attach(c *conn) {
	h.mu.Lock()
	old := h.conns[c.ep.ID]
	h.conns[c.ep.ID] = c
	h.mu.Unlock()
	if old != nil {
		old.close()
	}
}

func (h *Hub) detach(c *conn) {
	h.mu.Lock()
	if h.conns[c.ep.ID] == c {
		delete(h.conns, c.ep.ID)
	}
	h.mu.Unlock()
	c.close()
}

// stream writes events to one endpoint.
type stream struct {
	h    *Hub
	w    http.ResponseWriter
	rc   *http.ResponseController
	ep   Endpoint
	sent map[string]bool
}

func (s *stream) write(text string) error {
	s.rc.SetWriteDeadline(time.Now().Add(s.h.o.WriteTimeout))
	if _, err := s.w.Write([]byte(text)); err != nil {
		return err
	}
	if err := s.rc.Flush(); err != nil {
		return err
	}
	return s.rc.SetWriteDeadline(time.Time{})
}

// send writes one notification, once per stream, and records it
// delivered.
func (s *stream) send(r *http.Request, n store.Notification) error {
	if s.sent[n.ID] {
		return nil
	}
	ev := Event{ID: n.ID, Created: n.Created}
	if err := json.Unmarshal(n.Versions, &ev.Versions); err != nil {
		s.h.log.Warn("notification versions", "id", n.ID, "error", err)
		return nil
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := s.write(fmt.Sprintf("id: %s\nevent: %s\ndata: %s\n\n", n.ID, EventName, data)); err != nil {
		return err
	}
	s.sent[n.ID] = true
	err = s.h.o.Store.SetDeliveryState(r.Context(), n.ID, s.ep.ID, store.DeliveryDelivered, "")
	if err != nil && !errors.Is(err, store.ErrConflict) {
		s.h.log.Warn("record delivery", "id", n.ID, "endpoint", s.ep.ID, "error", err)
	}
	return nil
}
