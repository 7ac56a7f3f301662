package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/notify/hub"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/store"
)

// The notification hub (internal/notify/hub) is one of the server's
// services: it serves the endpoints' event streams at api.PathEvents,
// records notifications (content.notify), and learns from the endpoints'
// reports when a notified agent is done, which releases the clients.

// newHub makes the server's notification hub.
func (s *Server) newHub() (*hub.Hub, error) {
	return hub.New(hub.Options{Store: s.st, Logger: s.log, Now: s.now,
		AgentTimeout: time.Duration(s.cfg.AgentTimeout), PollInterval: time.Duration(s.cfg.NotifyPoll),
		ReconnectGrace: time.Duration(s.cfg.ReconnectGrace)})
}

// events serves an authenticated endpoint's event stream.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	e := endpointOf(r)
	ctx := hub.WithEndpoint(r.Context(), hub.Endpoint{ID: e.ID, Role: e.Role, Domain: e.Domain})
	s.hub.ServeHTTP(w, r.WithContext(ctx))
}

// delivered records the outcome of a notification's run from the report
// it produced: done when components are up to date, failed otherwise.
// An agent's outcome may release the clients waiting for it.
func (s *Server) delivered(ctx context.Context, id string, e store.Endpoint, rep *report.Report) {
	ok, detail := true, ""
	if c := rep.Category(category.Components); c == nil || c.Result == report.Failed || c.Result == report.Skipped {
		ok, detail = false, "components: "+string(rep.Result)
		if c != nil && c.Error != "" {
			detail = "components: " + c.Error
		}
	}
	err := s.hub.Done(ctx, e.ID, id, ok, detail)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
		s.log.Warn("record notification delivery", "notification", id, "endpoint", e.ID, "err", err)
	}
}

// connected reports whether an endpoint holds an event stream to this
// process.
func (s *Server) connected(id string) bool { return s.hub.Connected(id) }

// disconnect closes an endpoint's event streams (after revocation).
func (s *Server) disconnect(id string) { s.hub.Disconnect(id) }

// connectedCount is the number of endpoints holding an event stream to
// this process.
func (s *Server) connectedCount() int { return s.hub.ConnectedCount() }
