package server

import (
	"net/http"

	"github.com/cascade-update/cascade/internal/server/api"
)

// routes returns the server's handler. Every /api/v1 route but enrollment
// is authenticated: admin routes by an admin token, /api/v1/endpoint/ by
// an endpoint credential. Request paths reach the file system only
// through internal/static (/vendor/, /site/).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/vendor/", s.vendorFiles)
	mux.Handle("/site/", s.siteFiles)
	mux.HandleFunc("GET /healthz", s.handleHealth)                     // no authentication (health.go)
	mux.Handle("GET /metrics", s.admin(s.metrics.handler().ServeHTTP)) // an admin token (metrics.go)

	// Endpoint API.
	mux.HandleFunc("POST "+api.PathEnroll, s.handleEnroll)
	mux.Handle("POST "+api.PathStatus, s.endpoint(http.HandlerFunc(s.handleStatus)))
	mux.Handle("GET "+api.PathAgentDir, s.endpoint(http.HandlerFunc(s.handleAgentDirectory)))
	mux.Handle("POST "+api.PathReports, s.endpoint(http.HandlerFunc(s.handleReport)))
	mux.Handle("GET "+api.PathEvents, s.endpoint(http.HandlerFunc(s.events)))

	adminAPI := http.NewServeMux()
	// query registers an admin route that changes nothing (a GET, or a
	// POST that only computes from its body); a is any other admin route,
	// recorded in the audit log (audit.go).
	query := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, s.admin(h))
		adminAPI.Handle(pattern, h)
	}
	a := func(pattern string, h http.HandlerFunc) { query(pattern, s.audited(pattern, h)) }
	a("GET /api/v1/audit", s.handleAudit)
	a("GET /api/v1/status", s.handleServerStatus)

	a("GET /api/v1/policy", s.handleGetPolicy)
	a("PUT /api/v1/policy", s.handlePutPolicy)
	a("GET /api/v1/policy/history", s.handlePolicyHistory)
	a("GET "+api.PathPolicyLint, s.handleLintPolicy)
	query("POST "+api.PathPolicyLint, s.handleLintPolicy)
	query("POST "+api.PathPolicyPreview, s.handlePreviewPolicy)
	query("POST "+api.PathPolicyWhatIf, s.handleWhatIfPolicy)

	a("GET /api/v1/domains", s.handleListDomains)
	a("POST /api/v1/domains", s.handleCreateDomain)
	a("GET /api/v1/domains/{domain}", s.handleGetDomain)
	a("DELETE /api/v1/domains/{domain}", s.handleDeleteDomain)
	a("GET /api/v1/domains/{domain}/settings", s.handleGetSettings)
	a("PUT /api/v1/domains/{domain}/settings", s.handlePutSettings)
	a("GET /api/v1/domains/{domain}/programs", s.handleListApprovals)
	a("PUT /api/v1/domains/{domain}/programs/{program}", s.handleApprove)
	a("DELETE /api/v1/domains/{domain}/programs/{program}", s.handleWithdraw)

	a("GET /api/v1/endpoints", s.handleListEndpoints)
	a("GET /api/v1/endpoints/{id}", s.handleGetEndpoint)
	a("PUT /api/v1/endpoints/{id}/role", s.handleSetRole)
	a("POST /api/v1/endpoints/{id}/revoke", s.handleRevokeEndpoint)
	a("POST /api/v1/endpoints/{id}/notify", s.handleNotifyEndpoint)
	a("GET /api/v1/endpoints/{id}/reports", s.handleEndpointReports)
	a("GET /api/v1/agents", s.handleListAgents)
	a("GET /api/v1/agents/report", s.handleAgentReport)

	a("GET /api/v1/tokens", s.handleListTokens)
	a("POST /api/v1/tokens", s.handleCreateToken)
	a("DELETE /api/v1/tokens/{id}", s.handleRevokeToken)
	a("GET /api/v1/admin-tokens", s.handleListAdminTokens)
	a("POST /api/v1/admin-tokens", s.handleCreateAdminToken)
	a("DELETE /api/v1/admin-tokens/{id}", s.handleRevokeAdminToken)

	a("POST /api/v1/content/sync", s.handleSync)
	a("GET /api/v1/syncs", s.handleListSyncs)
	a("GET /api/v1/content/components", s.handleListComponents)
	a("POST /api/v1/content/components/{name}/hold", s.handleHold)
	a("POST /api/v1/content/components/{name}/release", s.handleRelease)
	a("POST /api/v1/content/components/{name}/deploy", s.handleDeploy)

	a("GET /api/v1/notifications", s.handleListNotifications)
	a("POST /api/v1/notifications", s.handleNotifyAll)
	a("GET /api/v1/notifications/{id}", s.handleGetNotification)

	a("GET /api/v1/reports", s.handleListReports)
	a("GET /api/v1/reports/last", s.handleLastReports)
	a("GET /api/v1/reports/{id}", s.handleGetReport)

	s.mountConsole(mux, adminAPI)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, s.log, r, errorf(http.StatusNotFound, "no such API: %s %s", r.Method, r.URL.Path), false)
	})
	return s.metrics.instrument(mux)
}
