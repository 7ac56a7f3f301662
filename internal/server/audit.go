package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// auditKinds names the audit entry of each state-changing admin route.
// A route missing here is still recorded, under its pattern.
var auditKinds = map[string]string{
	"PUT /api/v1/policy":                                 "policy.set",
	"POST /api/v1/domains":                               "domain.create",
	"DELETE /api/v1/domains/{domain}":                    "domain.delete",
	"PUT /api/v1/domains/{domain}/settings":              "domain.settings",
	"PUT /api/v1/domains/{domain}/programs/{program}":    "program.approve",
	"DELETE /api/v1/domains/{domain}/programs/{program}": "program.withdraw",
	"PUT /api/v1/endpoints/{id}/role":                    "endpoint.role",
	"POST /api/v1/endpoints/{id}/revoke":                 "endpoint.revoke",
	"POST /api/v1/endpoints/{id}/notify":                 "notification.notify-endpoint",
	"POST /api/v1/tokens":                                "enrollment-token.create",
	"DELETE /api/v1/tokens/{id}":                         "enrollment-token.revoke",
	"POST /api/v1/admin-tokens":                          "admin-token.create",
	"DELETE /api/v1/admin-tokens/{id}":                   "admin-token.revoke",
	"POST /api/v1/content/sync":                          "content.sync",
	"POST /api/v1/content/components/{name}/hold":        "component.hold",
	"POST /api/v1/content/components/{name}/release":     "component.release",
	"POST /api/v1/content/components/{name}/deploy":      "component.deploy",
	"POST /api/v1/notifications":                         "notification.notify-all",
}

// auditNote is what a handler adds to its request's audit entry once its
// change is made: a summary, the state before and after, and a target the
// path does not name.
type auditNote struct {
	summary, target string
	before, after   any
}

type auditNoteKey struct{}

// noteAudit returns the audit note of r's entry (a throwaway one outside
// an audited request).
func noteAudit(r *http.Request) *auditNote {
	if n, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		return n
	}
	return &auditNote{}
}

// actorKey holds the actor of a change made through the console.
type actorKey struct{}

// WithActor returns ctx naming actor ("account:NAME") as the author of the
// changes made with it.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// actorOf names who makes the change r asks for.
func actorOf(r *http.Request) string {
	if a, ok := r.Context().Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	if t := adminOf(r); t.ID != "" {
		return "token:" + t.Name
	}
	return "unknown"
}

// audited records an audit entry for every state-changing request (any
// method but GET and HEAD): the one place the API's changes are recorded.
// The entry (who, what kind, the target the path names) travels in the
// request's context (store.WithAudit), and the store writes it in the
// transaction of the first change h makes: the change and its entry are
// committed together or not at all. Once h has answered, the handler's
// note (summary, before and after, a target the store assigned) is added
// to the entry. A request that succeeded (2xx) without changing the
// database (a sync started) is recorded then; one that failed without
// changing anything is not recorded.
func (s *Server) audited(pattern string, h http.HandlerFunc) http.HandlerFunc {
	method, _, _ := strings.Cut(pattern, " ")
	if method == http.MethodGet || method == http.MethodHead {
		return h
	}
	kind := auditKinds[pattern]
	if kind == "" {
		kind = pattern
	}
	return func(w http.ResponseWriter, r *http.Request) {
		note := &auditNote{}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		var parts []string
		for _, name := range []string{"domain", "program", "id", "name"} {
			if v := r.PathValue(name); v != "" {
				parts = append(parts, v)
			}
		}
		pending := store.NewAudit(store.AuditEntry{Actor: actorOf(r), Kind: kind, Target: strings.Join(parts, "/"),
			Summary: r.Method + " " + r.URL.Path})
		ctx := store.WithAudit(context.WithValue(r.Context(), auditNoteKey{}, note), pending)
		h(sw, r.WithContext(ctx))
		pending.Close()
		e, written := pending.Written()
		ok := sw.code >= 200 && sw.code <= 299
		if !written && !ok {
			return
		}
		s.view.invalidate() // the console's next page shows the change
		if written && ok && note.target == "" && note.summary == "" && note.before == nil && note.after == nil {
			return // nothing to add
		}
		if note.target != "" {
			e.Target = note.target
		}
		if note.summary != "" {
			e.Summary = note.summary
		}
		if !ok {
			e.Summary += fmt.Sprintf(" (answered %d)", sw.code)
		}
		e.Before, e.After = auditDoc(note.before), auditDoc(note.after)
		ctx = context.WithoutCancel(r.Context())
		if !written {
			s.recordAudit(ctx, e)
			return
		}
		if err := s.st.AmendAudit(ctx, e); err != nil {
			s.log.Error("audit log: could not add the details of a recorded change", "seq", e.Seq, "kind", e.Kind, "err", err)
		}
	}
}

// recordAudit stores e, logging a failure.
func (s *Server) recordAudit(ctx context.Context, e store.AuditEntry) {
	if _, err := s.st.AddAudit(ctx, e); err != nil {
		s.log.Error("audit log: could not record a change", "kind", e.Kind, "target", e.Target, "actor", e.Actor, "err", err)
	}
}

// RecordAudit records in st's audit log an action made outside the API
// that changes nothing in the database. A change of the database records
// its entry in its own transaction instead: make it with a context from
// store.WithAudit.
func RecordAudit(ctx context.Context, st store.Store, e store.AuditEntry) error {
	if _, err := st.AddAudit(ctx, e); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// auditDoc encodes a before/after state: text as is, anything else as
// JSON, nil as "".
func auditDoc(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// statusWriter remembers the status code a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// maxAuditPage bounds a page of GET /api/v1/audit.
const maxAuditPage = 1000

// handleAudit answers with the audit log, newest first: ?actor=, ?kind=
// (a kind or a prefix ending in "."), ?since= and ?until= (RFC 3339),
// ?limit= (default 100, at most 1000) and ?before= (the next_before of
// the previous page).
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	f, err := AuditFilterOf(r)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	es, err := s.st.ListAudit(r.Context(), f)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := api.AuditPage{Entries: make([]api.AuditEntry, len(es))}
	for i, e := range es {
		out.Entries[i] = api.AuditEntry{Seq: e.Seq, At: e.At, Actor: e.Actor, Kind: e.Kind, Target: e.Target,
			Summary: e.Summary, Before: e.Before, After: e.After}
	}
	if len(es) == f.Limit {
		out.NextBefore = es[len(es)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
}

// AuditFilterOf reads an audit filter from r's query (the API's and the
// console's audit pages take the same parameters).
func AuditFilterOf(r *http.Request) (store.AuditFilter, error) {
	q := r.URL.Query()
	f := store.AuditFilter{Actor: strings.TrimSpace(q.Get("actor")), Kind: strings.TrimSpace(q.Get("kind"))}
	var err error
	if f.Limit, err = queryInt(r, "limit", 100); err != nil {
		return f, err
	}
	if f.Limit <= 0 || f.Limit > maxAuditPage {
		return f, errorf(http.StatusBadRequest, "limit must be 1-%d", maxAuditPage)
	}
	if v := q.Get("before"); v != "" {
		n, perr := parseSeq(v)
		if perr != nil {
			return f, errorf(http.StatusBadRequest, "before %q is not an audit entry number", v)
		}
		f.Before = n
	}
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		t, perr := time.Parse(time.RFC3339, v)
		if perr != nil {
			if t, perr = time.Parse("2006-01-02T15:04", v); perr != nil {
				if t, perr = time.Parse(time.DateOnly, v); perr != nil {
					return f, errorf(http.StatusBadRequest, "%s %q is not a time (RFC 3339, 2006-01-02T15:04 or 2006-01-02, UTC)", b.name, v)
				}
			}
		}
		*b.t = t
	}
	return f, nil
}

func parseSeq(v string) (int64, error) {
	var n int64
	_, err := fmt.Sscan(v, &n)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad sequence number %q", v)
	}
	return n, nil
}
