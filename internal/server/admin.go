package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cascade-update/cascade/internal/store"
)

// CreateAdminToken stores a new admin token named name and returns it
// with its secret, which is shown this once (the store keeps its hash).
// `cascade server admin create` calls it on the database directly, to
// make the first token.
func CreateAdminToken(ctx context.Context, st store.Store, name string) (store.AdminToken, string, error) {
	if name == "" {
		return store.AdminToken{}, "", errorf(http.StatusBadRequest, "an admin token needs a name (what or who it is for)")
	}
	secret, hash, err := store.NewSecret(adminPrefix)
	if err != nil {
		return store.AdminToken{}, "", fmt.Errorf("create admin token: %w", err)
	}
	t, err := st.CreateAdminToken(ctx, store.AdminToken{Name: name, Hash: hash})
	if err != nil {
		return store.AdminToken{}, "", err
	}
	return t, secret, nil
}
