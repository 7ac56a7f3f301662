package server

import (
	"fmt"
	"net/http"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/trust"
)

// handleSync copies the origin now and answers with the outcome (502 when
// the copy failed). A process that is not the writer also asks the
// writer to sync (only the writer records and deploys what it synced).
func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	if s.cl != nil && s.site.Writer() == nil {
		if err := s.st.Signal(r.Context(), store.TopicServer, sigSync); err != nil {
			s.log.Warn("ask the writer to sync", "err", err)
		}
	}
	res, err := s.sync.Sync(r.Context())
	if err != nil {
		writeError(w, s.log, r, errorf(http.StatusBadGateway, "sync: %v", err), true)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleListComponents(w http.ResponseWriter, r *http.Request) {
	cs, err := s.st.ListComponents(r.Context())
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := make([]api.Component, len(cs))
	for i, c := range cs {
		out[i] = componentJSON(c)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleHold(w http.ResponseWriter, r *http.Request)    { s.holdOrRelease(w, r, true) }
func (s *Server) handleRelease(w http.ResponseWriter, r *http.Request) { s.holdOrRelease(w, r, false) }

// holdOrRelease holds a component at its deployed version, or releases
// it (deploying the newest synced version and notifying endpoints).
func (s *Server) holdOrRelease(w http.ResponseWriter, r *http.Request, hold bool) {
	c, err := s.content.hold(r.Context(), r.PathValue("name"), hold)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	*noteAudit(r) = auditNote{summary: fmt.Sprintf("%s: held %t, deployed %s", c.Name, c.Held, c.Deployed), after: c}
	s.log.Info("component hold changed", "component", c.Name, "held", c.Held, "deployed", c.Deployed, "by", adminOf(r).Name)
	writeJSON(w, http.StatusOK, c)
}

// handleDeploy deploys a given version of a component (a rollback, or a
// newer version while held).
func (s *Server) handleDeploy(w http.ResponseWriter, r *http.Request) {
	var req api.Deploy
	if err := decodeJSON(r, maxSmallBody, &req); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	c, err := s.content.deploy(r.Context(), r.PathValue("name"), req.Version)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	*noteAudit(r) = auditNote{summary: fmt.Sprintf("%s: deployed %s", c.Name, c.Deployed), after: c}
	s.log.Info("component deployed", "component", c.Name, "version", c.Deployed, "by", adminOf(r).Name)
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleListNotifications(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	ns, err := s.st.ListNotifications(r.Context(), limit)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := make([]api.Notification, len(ns))
	for i, n := range ns {
		out[i] = notificationJSON(n)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleNotifyAll notifies every endpoint (of a domain) of the deployed
// component versions, update agents first.
func (s *Server) handleNotifyAll(w http.ResponseWriter, r *http.Request) {
	var req api.NotifyRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, maxSmallBody, &req); err != nil {
			writeError(w, s.log, r, err, true)
			return
		}
	}
	n, err := s.content.notifyAll(r.Context(), req.Domain)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	*noteAudit(r) = auditNote{target: n.ID, summary: fmt.Sprintf("notification %s (domain %q)", n.ID, n.Domain)}
	s.log.Info("notified endpoints", "notification", n.ID, "domain", n.Domain, "by", adminOf(r).Name)
	s.writeNotification(w, r, n, http.StatusCreated)
}

// handleNotifyEndpoint notifies one endpoint of the deployed component
// versions ("update now"): it runs a notify-components update at once.
func (s *Server) handleNotifyEndpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := s.content.notifyEndpoint(r.Context(), id)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	*noteAudit(r) = auditNote{summary: fmt.Sprintf("notification %s to endpoint %s (update now)", n.ID, id)}
	s.log.Info("notified endpoint", "notification", n.ID, "endpoint", id, "by", adminOf(r).Name)
	s.writeNotification(w, r, n, http.StatusCreated)
}

func (s *Server) handleGetNotification(w http.ResponseWriter, r *http.Request) {
	n, err := s.st.Notification(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	s.writeNotification(w, r, n, http.StatusOK)
}

// writeNotification answers with a notification and its delivery counts.
func (s *Server) writeNotification(w http.ResponseWriter, r *http.Request, n store.Notification, code int) {
	counts, err := s.st.DeliveryCounts(r.Context(), n.ID)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := notificationJSON(n)
	out.Deliveries = map[string]map[string]int{}
	for role, states := range counts {
		m := map[string]int{}
		for st, c := range states {
			m[string(st)] = c
		}
		out.Deliveries[string(role)] = m
	}
	writeJSON(w, code, out)
}

func reportJSON(r store.Report) api.Report {
	out := api.Report{ID: r.ID, EndpointID: r.EndpointID, ReceivedAt: r.ReceivedAt, Trigger: r.Trigger, Started: r.Started,
		Finished: r.Finished, Result: r.Result, Document: r.Document, Categories: make([]api.CategoryReport, len(r.Categories))}
	for i, c := range r.Categories {
		out.Categories[i] = api.CategoryReport{Category: string(c.Category), Result: c.Result, Source: c.Source,
			Before: c.VersionsBefore, After: c.VersionsAfter, Bytes: c.Bytes, FullBytes: c.FullBytes}
	}
	return out
}

func reportsJSON(rs []store.Report) []api.Report {
	out := make([]api.Report, len(rs))
	for i, r := range rs {
		out[i] = reportJSON(r)
	}
	return out
}

// handleListReports lists report history: ?endpoint=, ?since=, ?until=
// (RFC 3339), ?limit= (default 100), newest first.
func (s *Server) handleListReports(w http.ResponseWriter, r *http.Request) {
	s.listReports(w, r, r.URL.Query().Get("endpoint"))
}

func (s *Server) handleEndpointReports(w http.ResponseWriter, r *http.Request) {
	s.listReports(w, r, r.PathValue("id"))
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request, endpointID string) {
	f := store.ReportFilter{EndpointID: endpointID}
	var err error
	if f.Limit, err = queryInt(r, "limit", 100); err == nil {
		if f.Since, err = queryTime(r, "since"); err == nil {
			f.Until, err = queryTime(r, "until")
		}
	}
	if f.Limit <= 0 || f.Limit > maxPage {
		f.Limit = maxPage
	}
	var rs []store.Report
	if err == nil {
		rs, err = s.st.ListReports(r.Context(), f)
	}
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, reportsJSON(rs))
}

// handleLastReports lists the last report of every endpoint (?domain=,
// ?role=, paged with ?after= and ?limit=).
func (s *Server) handleLastReports(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(r, "limit", 1000)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	rs, err := s.st.LastReports(r.Context(), store.EndpointFilter{Domain: q.Get("domain"), Role: store.Role(q.Get("role")),
		After: q.Get("after"), Limit: limit})
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, reportsJSON(rs))
}

func (s *Server) handleGetReport(w http.ResponseWriter, r *http.Request) {
	rep, err := s.st.Report(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, reportJSON(rep))
}

func (s *Server) handleServerStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.site.Status()
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, api.Status{URL: s.cfg.URL, Fingerprint: s.fp.String(), VendorRootSHA256: trust.RootSHA256(s.vendorRoot), Origin: s.cfg.Origin,
		Database: redactDSN(s.cfg.DSN(s.dir)), Site: st, LastSync: s.sync.Last(), Syncing: s.sync.Progress(), Connected: s.connectedCount(),
		Writer: s.cl == nil || s.site.Writer() != nil})
}
