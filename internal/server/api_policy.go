package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"

	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

func policyJSON(p store.PolicyVersion) api.Policy {
	return api.Policy{Version: p.Version, Document: p.Document, Author: p.Author, Created: p.Created}
}

func (s *Server) handleGetPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.st.CurrentPolicy(r.Context())
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, policyJSON(p))
}

func (s *Server) handlePolicyHistory(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 20)
	if err == nil {
		var ps []store.PolicyVersion
		if ps, err = s.st.ListPolicies(r.Context(), limit); err == nil {
			out := make([]api.Policy, len(ps))
			for i, p := range ps {
				out[i] = policyJSON(p)
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
	}
	writeError(w, s.log, r, err, true)
}

// handlePutPolicy replaces the policy. The body is the YAML document
// (Content-Type application/yaml or text/*) or an api.PutPolicy (JSON).
// It is validated exactly as `cascade explain` validates a file: an
// invalid policy is 422 with the same one line, and every problem.
func (s *Server) handlePutPolicy(w http.ResponseWriter, r *http.Request) {
	doc, ifv, err := policyBody(r)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	if _, err := policy.Parse([]byte(doc)); err != nil {
		he := &httpError{code: http.StatusUnprocessableEntity, msg: err.Error()}
		var ve *policy.ValidationError
		if errors.As(err, &ve) {
			he.problems = ve.Problems
		}
		writeError(w, s.log, r, he, true)
		return
	}
	prev, _ := s.st.CurrentPolicy(r.Context())
	p, err := s.st.PutPolicy(r.Context(), doc, adminOf(r).Name, ifv)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	*noteAudit(r) = auditNote{target: fmt.Sprintf("version %d", p.Version),
		summary: fmt.Sprintf("policy version %d (was %d)", p.Version, prev.Version), before: prev.Document, after: doc}
	pub, err := s.site.Publish(r.Context())
	if err != nil {
		writeError(w, s.log, r, publishFailed(fmt.Sprintf("policy version %d", p.Version), err), true)
		return
	}
	s.log.Info("policy changed", "version", p.Version, "author", p.Author)
	writeJSON(w, http.StatusOK, api.PolicyResult{Policy: policyJSON(p), Published: pub})
}

// policyBody reads a policy document and the optional expected version.
func policyBody(r *http.Request) (string, int64, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var req api.PutPolicy
		if err := decodeJSON(r, maxPolicyBody, &req); err != nil {
			return "", 0, err
		}
		ifv := store.AnyVersion
		if req.IfVersion != nil {
			ifv = *req.IfVersion
		}
		return req.Document, ifv, nil
	}
	data, err := readBody(r, maxPolicyBody)
	if err != nil {
		return "", 0, err
	}
	ifv, err := ifVersion(r)
	return string(data), ifv, err
}

// publishFailed is the error of an edit stored in the database whose
// publication failed: the site reconcile retries it.
func publishFailed(what string, err error) error {
	return fmt.Errorf("%s is stored, but signing the site documents failed (the server retries on its next reconcile): %w", what, err)
}

func (s *Server) handleListDomains(w http.ResponseWriter, r *http.Request) {
	ds, err := s.st.ListDomains(r.Context())
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := make([]api.Domain, len(ds))
	for i, d := range ds {
		out[i] = api.Domain{Name: d.Name, Created: d.Created}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCreateDomain(w http.ResponseWriter, r *http.Request) {
	var req api.Domain
	if err := decodeJSON(r, maxSmallBody, &req); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	if !validDomainName(req.Name) {
		writeError(w, s.log, r, errorf(http.StatusBadRequest,
			"domain name %q: want 1-121 letters, digits, '.', '_' or '-', starting with a letter or digit", req.Name), true)
		return
	}
	d, err := s.st.CreateDomain(r.Context(), req.Name)
	if err == nil {
		_, err = s.site.Publish(r.Context())
		if err != nil {
			err = publishFailed("domain "+d.Name, err)
		}
	}
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusCreated, api.Domain{Name: d.Name, Created: d.Created})
}

func (s *Server) handleGetDomain(w http.ResponseWriter, r *http.Request) {
	d, err := s.st.Domain(r.Context(), r.PathValue("domain"))
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, api.Domain{Name: d.Name, Created: d.Created})
}

func (s *Server) handleDeleteDomain(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("domain")
	err := s.st.DeleteDomain(r.Context(), name)
	if err == nil {
		if _, err = s.site.Publish(r.Context()); err != nil {
			err = publishFailed("the deletion of domain "+name, err)
		}
	}
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func settingsJSON(d store.DomainSettings) api.Settings {
	return api.Settings{Domain: d.Domain, Version: d.Version, Document: d.Document, Updated: d.Updated}
}

func (s *Server) handleGetSettings(w http.ResponseWriter, r *http.Request) {
	d, err := s.st.DomainSettings(r.Context(), r.PathValue("domain"))
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, settingsJSON(d))
}

// handlePutSettings replaces a domain's settings document: the body is
// the JSON object itself; ?if_version=N makes the write conditional.
func (s *Server) handlePutSettings(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("domain")
	doc, err := readBody(r, maxSmallBody)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	ifv, err := ifVersion(r)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil || obj == nil {
		writeError(w, s.log, r, errorf(http.StatusBadRequest, "settings must be a JSON object"), true)
		return
	}
	d, err := s.st.PutDomainSettings(r.Context(), name, doc, ifv)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	pub, err := s.site.Publish(r.Context())
	if err != nil {
		writeError(w, s.log, r, publishFailed(fmt.Sprintf("settings version %d of domain %s", d.Version, name), err), true)
		return
	}
	out := settingsJSON(d)
	out.Published = &pub
	writeJSON(w, http.StatusOK, out)
}

func approvalJSON(a store.ProgramApproval) api.Approval {
	return api.Approval{Domain: a.Domain, Program: a.Program, Version: a.Version, Approved: a.Approved}
}

func (s *Server) handleListApprovals(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("domain")
	if _, err := s.st.Domain(r.Context(), name); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	as, err := s.st.ProgramApprovals(r.Context(), name)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	out := make([]api.Approval, len(as))
	for i, a := range as {
		out[i] = approvalJSON(a)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleApprove approves a program version for a domain. The version
// must be one the mirrored vendor repository holds.
func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request) {
	var req api.Deploy
	if err := decodeJSON(r, maxSmallBody, &req); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	a := store.ProgramApproval{Domain: r.PathValue("domain"), Program: r.PathValue("program"), Version: req.Version}
	if err := s.checkProgram(r.Context(), a.Program, a.Version); err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	a, err := s.st.ApproveProgram(r.Context(), a)
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	pub, err := s.site.Publish(r.Context())
	if err != nil {
		writeError(w, s.log, r, publishFailed("the approval", err), true)
		return
	}
	out := approvalJSON(a)
	out.Published = &pub
	writeJSON(w, http.StatusOK, out)
}

// checkProgram checks that the mirrored vendor repository holds version
// of program.
func (s *Server) checkProgram(ctx context.Context, program, version string) error {
	idx, err := s.sync.localIndex(ctx, "programs")
	if err != nil {
		return &httpError{code: http.StatusConflict, msg: errNoVendor.Error() + ": " + err.Error()}
	}
	it, ok := idx.Items[program]
	if !ok {
		return errorf(http.StatusUnprocessableEntity, "program %q is not in the mirrored vendor repository", program)
	}
	if !slices.Contains(it.Kept, version) {
		return errorf(http.StatusUnprocessableEntity, "program %s: version %q is not in the mirrored vendor repository (it holds %v)",
			program, version, it.Kept)
	}
	return nil
}

func (s *Server) handleWithdraw(w http.ResponseWriter, r *http.Request) {
	d, p := r.PathValue("domain"), r.PathValue("program")
	err := s.st.WithdrawProgramApproval(r.Context(), d, p)
	if err == nil {
		if _, err = s.site.Publish(r.Context()); err != nil {
			err = publishFailed("the withdrawal", err)
		}
	}
	if err != nil {
		writeError(w, s.log, r, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
