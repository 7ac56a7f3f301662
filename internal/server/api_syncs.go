package server

import (
	"net/http"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// maxSyncLog caps how many syncs one request of the sync log returns.
const maxSyncLog = 1000

// handleListSyncs returns the newest syncs of the sync log (?limit=N,
// default 50, at most maxSyncLog), newest first.
func (s *Server) handleListSyncs(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 50)
	if err == nil && (limit < 1 || limit > maxSyncLog) {
		err = errorf(http.StatusBadRequest, "query limit: %d is not between 1 and %d", limit, maxSyncLog)
	}
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out, err := s.syncLog(r, limit)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// syncLog reads the newest limit syncs of the sync log.
func (s *Server) syncLog(r *http.Request, limit int) ([]api.SyncLogEntry, error) {
	recs, err := s.st.ListSyncs(r.Context(), limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.SyncLogEntry, len(recs))
	for i, rec := range recs {
		out[i] = syncLogJSON(rec)
	}
	return out, nil
}

func syncLogJSON(r store.SyncRecord) api.SyncLogEntry {
	return api.SyncLogEntry{ID: r.ID, Result: string(r.Result), Server: r.Server, Writer: r.Writer,
		SyncResult: api.SyncResult{Started: r.Started, Finished: r.Finished, Timestamp: r.Timestamp,
			UpToDate: r.Result == store.SyncUpToDate, Targets: r.Targets, Fetched: r.Fetched, Bytes: r.Bytes,
			Deployed: r.Deployed, Error: r.Error}}
}
