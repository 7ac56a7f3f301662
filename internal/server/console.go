package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

// mountConsole serves the web console at / (every path the API and the
// repositories do not take). adminAPI holds the admin API's handlers
// without token authentication, for the console's changes.
func (s *Server) mountConsole(mux, adminAPI *http.ServeMux) {
	c, err := console.New(console.Options{Store: s.st, Backend: &consoleBackend{s: s, api: adminAPI},
		Logger: s.log, Now: s.now, NotSeen: time.Duration(s.cfg.ConsoleNotSeen),
		Idle: time.Duration(s.cfg.ConsoleIdle), Absolute: time.Duration(s.cfg.ConsoleAbsolute)})
	if err != nil {
		// The templates are embedded: a parse error is a build defect.
		panic(err)
	}
	mux.Handle("/", c)
}

// consoleBackend answers the console with the API's own functions.
type consoleBackend struct {
	s   *Server
	api *http.ServeMux
}

// agentDownAfter is how long an update agent that is not connected may go
// unseen before the dashboard warns.
const agentDownAfter = time.Hour

// Dashboard implements console.Backend.
func (b *consoleBackend) Dashboard(ctx context.Context, notSeenSince time.Time) (*console.Dashboard, error) {
	s := b.s
	view, err := s.view.get(ctx)
	if err != nil {
		return nil, err
	}
	rep := view.report
	d := &console.Dashboard{PolicyVersion: rep.PolicyVersion, LastSync: s.sync.Last(), Unassigned: rep.Unassigned.Endpoints,
		Generated: rep.Generated}
	add := func(g api.AgentAnalysis) {
		d.Total += g.Endpoints
		d.UpToDate += g.States[api.StateUpToDate]
		d.Behind += g.States[api.StateBehind]
		d.Failing += g.States[api.StateFailing]
		d.NoReport += g.States[api.StateNoReport]
	}
	add(rep.Unassigned)
	for _, g := range rep.Agents {
		add(g)
		d.Agents = append(d.Agents, g)
	}
	_, d.NotSeen, err = s.st.QueryEndpoints(ctx, store.EndpointQuery{SeenBefore: notSeenSince, Limit: 1})
	if err != nil {
		return nil, err
	}
	comps, err := s.st.ListComponents(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range comps {
		d.Components = append(d.Components, componentJSON(c))
	}
	var mirrorErr error
	if d.Programs, d.Approvals, mirrorErr, err = s.consolePrograms(ctx); err != nil {
		return nil, err
	}
	if mirrorErr != nil {
		d.ProgramsError = mirrorErr.Error()
	}
	if st, err := s.site.Status(); err != nil {
		d.Warnings = append(d.Warnings, "site repository: "+err.Error())
	} else {
		d.Warnings = append(d.Warnings, st.Warnings...)
	}
	if d.LastSync != nil && d.LastSync.Error != "" {
		d.Warnings = append(d.Warnings, "the origin could not be reached or read at the last sync: "+d.LastSync.Error)
	}
	agents, err := s.st.ListEndpoints(ctx, store.EndpointFilter{Role: store.RoleAgent})
	if err != nil {
		return nil, err
	}
	for _, a := range agents {
		if !s.connected(a.ID) && s.now().Sub(a.LastSeen) > agentDownAfter {
			d.Warnings = append(d.Warnings, fmt.Sprintf("update agent %s (%s) is not connected and was last seen %s",
				a.AgentID, a.Hostname, a.LastSeen.UTC().Format(time.RFC3339)))
		}
	}
	return d, nil
}

// EndpointStates implements console.Backend with the agent report's
// classification (the registry view).
func (b *consoleBackend) EndpointStates(ctx context.Context) (map[string]string, error) {
	view, err := b.s.view.get(ctx)
	if err != nil {
		return nil, err
	}
	return view.states, nil
}

// AgentMembers implements console.Backend with the agent report (the
// registry view).
func (b *consoleBackend) AgentMembers(ctx context.Context, agentID string) ([]string, error) {
	view, err := b.s.view.get(ctx)
	if err != nil {
		return nil, err
	}
	return append([]string{}, view.members[agentID]...), nil
}

// AuditFilter implements console.Backend.
func (b *consoleBackend) AuditFilter(r *http.Request) (store.AuditFilter, error) {
	return AuditFilterOf(r)
}

// Do implements console.Backend: the request runs through the admin API's
// handler for it (audit recording included), as actor.
func (b *consoleBackend) Do(ctx context.Context, actor, method, path string, body any) (int, []byte, error) {
	var rd *bytes.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("console: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	} else {
		rd = bytes.NewReader(nil)
	}
	ctx = WithActor(context.WithValue(ctx, principalKey{}, store.AdminToken{Name: actor}), actor)
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("console: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	b.api.ServeHTTP(rec, req)
	return rec.code, rec.body.Bytes(), nil
}

// recorder keeps an in-process answer.
type recorder struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) { r.wrote = true; return r.body.Write(b) }
