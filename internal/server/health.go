package server

import (
	"context"
	"net/http"
	"time"

	"github.com/cascade-update/cascade/internal/buildinfo"
)

// healthTimeout bounds the database read of a health check.
const healthTimeout = 5 * time.Second

// health is the body of /healthz: nothing secret (no URLs, paths,
// database names or error texts), so that it can be served without
// authentication to load balancers and monitors.
type health struct {
	Status   string         `json:"status"` // "ok" or "unavailable"
	Database string         `json:"database"`
	LastSync *healthSync    `json:"last_sync,omitempty"` // absent before the first sync
	Build    buildinfo.Info `json:"build"`               // which build is running, as the agent's /healthz and `cascade version` say
}

// healthSync is the outcome of the last sync from the origin.
type healthSync struct {
	Finished  time.Time `json:"finished"`
	OK        bool      `json:"ok"`
	Timestamp int64     `json:"timestamp,omitempty"` // the vendor timestamp version mirrored
}

// handleHealth answers 200 when the database answers a read within
// healthTimeout, 503 otherwise; the body says so and gives the last
// sync's result. A failed sync does not make the server unhealthy: it
// still serves what it mirrored, and the origin is not its own.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	h := health{Status: "ok", Database: "ok", Build: buildinfo.Read()}
	code := http.StatusOK
	if _, err := s.pingDatabase(ctx); err != nil {
		h.Status, h.Database, code = "unavailable", "unreachable", http.StatusServiceUnavailable
		s.log.Warn("health check: database", "err", err)
	}
	if l := s.sync.Last(); l != nil {
		h.LastSync = &healthSync{Finished: l.Finished, OK: l.Error == "", Timestamp: l.Timestamp}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, h)
}
