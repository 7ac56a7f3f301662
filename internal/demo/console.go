package demo

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"

	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

// consoleAccount makes the demo's web console account "admin" with a
// random password, which it returns.
func consoleAccount(ctx context.Context, st store.Store) (string, error) {
	b := make([]byte, 10)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	password := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
	h, err := console.HashPassword(password)
	if err != nil {
		return "", fmt.Errorf("demo console account: %w", err)
	}
	if _, err := st.CreateAccount(ctx, store.Account{Name: "admin", Role: store.AccountAdmin, PasswordHash: h}); err != nil {
		return "", fmt.Errorf("demo console account: %w", err)
	}
	return password, nil
}
