package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// Prefixes of the secrets the server hands out, so that a leaked one is
// recognisable.
const (
	adminPrefix    = "cascade_admin_"
	enrollPrefix   = "cascade_enroll_"
	endpointPrefix = "cascade_ep_"
)

// principal keys the authenticated caller in a request's context.
type principalKey struct{}

// adminOf returns the admin token that authenticated r.
func adminOf(r *http.Request) store.AdminToken {
	t, _ := r.Context().Value(principalKey{}).(store.AdminToken)
	return t
}

// endpointOf returns the endpoint that authenticated r.
func endpointOf(r *http.Request) store.Endpoint {
	e, _ := r.Context().Value(principalKey{}).(store.Endpoint)
	return e
}

// EndpointFromContext returns the endpoint that authenticated the request
// whose context is ctx (for handlers mounted behind endpoint
// authentication, such as the notification stream).
func EndpointFromContext(ctx context.Context) (store.Endpoint, bool) {
	e, ok := ctx.Value(principalKey{}).(store.Endpoint)
	return e, ok
}

// admin wraps h with admin-token authentication: a missing, unknown or
// revoked token is 401.
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			writeError(w, s.log, r, errorf(http.StatusUnauthorized, "admin token required (Authorization: Bearer)"), true)
			return
		}
		t, err := s.st.AuthenticateAdmin(r.Context(), store.HashSecret(tok))
		if err != nil {
			writeError(w, s.log, r, authError("admin token", err), true)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, t)))
	})
}

// endpoint wraps h with endpoint-credential authentication: a missing,
// unknown or revoked credential is 401.
func (s *Server) endpoint(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			writeError(w, s.log, r, errorf(http.StatusUnauthorized, "endpoint credential required (Authorization: Bearer)"), false)
			return
		}
		e, err := s.creds.authenticate(r.Context(), store.HashSecret(tok))
		if err != nil {
			writeError(w, s.log, r, authError("endpoint credential", err), false)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, e)))
	})
}

// authError turns a failed authentication into 401 (or 500 when the
// database failed).
func authError(what string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusUnauthorized, "unknown %s", what)
	case errors.Is(err, store.ErrRevoked):
		return errorf(http.StatusUnauthorized, "%s revoked", what)
	}
	return err
}

// credCache remembers recent endpoint authentications for a short time,
// so that a busy endpoint (report uploads, heartbeats) costs one database
// read per TTL. Revocation through this process invalidates at once;
// through another process (PostgreSQL) it takes effect within the TTL.
type credCache struct {
	st  store.Store
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[store.Hash]credEntry
}

type credEntry struct {
	e     store.Endpoint
	until time.Time
}

// maxCredEntries bounds the cache; past it, expired entries are swept and,
// if still full, everything is dropped.
const maxCredEntries = 100000

func (c *credCache) authenticate(ctx context.Context, h store.Hash) (store.Endpoint, error) {
	now := c.now()
	c.mu.Lock()
	ent, ok := c.entries[h]
	c.mu.Unlock()
	if ok && now.Before(ent.until) {
		return ent.e, nil
	}
	e, err := c.st.AuthenticateEndpoint(ctx, h)
	if err != nil {
		return store.Endpoint{}, err
	}
	if c.ttl > 0 {
		c.mu.Lock()
		if len(c.entries) >= maxCredEntries {
			c.sweep(now)
		}
		c.entries[h] = credEntry{e: e, until: now.Add(c.ttl)}
		c.mu.Unlock()
	}
	return e, nil
}

// sweep drops expired entries, or all of them if none expired. c.mu held.
func (c *credCache) sweep(now time.Time) {
	for h, ent := range c.entries {
		if !now.Before(ent.until) {
			delete(c.entries, h)
		}
	}
	if len(c.entries) >= maxCredEntries {
		clear(c.entries)
	}
}

// forget drops the cached authentication of an endpoint.
func (c *credCache) forget(endpointID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, ent := range c.entries {
		if ent.e.ID == endpointID {
			delete(c.entries, h)
		}
	}
}
