package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// TestRefusedEnrollmentTakesNoWriter: an enrollment with an unknown,
// revoked, expired or used-up token is refused without the write lock.
// While another connection holds the writer (SQLite: a BEGIN IMMEDIATE
// transaction; PostgreSQL: a lock on enrollment_tokens that blocks writes
// but not reads), each refusal still arrives, with its own error, before
// the context's deadline; waiting for the writer would end in the
// deadline instead.
func TestRefusedEnrollmentTakesNoWriter(t *testing.T) {
	for _, tc := range []struct {
		name string
		dsn  func(testing.TB) string
		hold string
	}{
		{"sqlite", sqliteDSN, "BEGIN IMMEDIATE"},
		{"postgres", pgtest.DSN, "BEGIN; LOCK TABLE enrollment_tokens IN EXCLUSIVE MODE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := tc.dsn(t)
			clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			st, err := store.Open(context.Background(), dsn, store.Options{Clock: func() time.Time { return clock },
				BusyTimeout: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ctx := context.Background()
			if _, err := st.CreateDomain(ctx, "d"); err != nil {
				t.Fatal(err)
			}
			token := func(tok store.EnrollmentToken) store.Hash {
				_, h, err := store.NewSecret("cascade_enroll_")
				if err != nil {
					t.Fatal(err)
				}
				tok.Hash, tok.Domain = h, "d"
				if tok, err = st.CreateEnrollmentToken(ctx, tok); err != nil {
					t.Fatal(err)
				}
				return h
			}
			revoked := token(store.EnrollmentToken{})
			toks, err := st.ListEnrollmentTokens(ctx, "d")
			if err != nil {
				t.Fatal(err)
			}
			if err := st.RevokeEnrollmentToken(ctx, toks[0].ID); err != nil {
				t.Fatal(err)
			}
			expired := token(store.EnrollmentToken{Expires: clock.Add(time.Minute)})
			usedUp := token(store.EnrollmentToken{MaxUses: 1})
			if _, err := st.Enroll(ctx, usedUp, newEndpoint(t, "first")); err != nil {
				t.Fatal(err)
			}
			clientsOnly := token(store.EnrollmentToken{})
			clock = clock.Add(time.Hour)

			driver, name := "pgx", dsn
			if tc.name == "sqlite" {
				driver, name = "sqlite", dsn[len("sqlite:"):]
			}
			raw, err := sql.Open(driver, name)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			conn, err := raw.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, tc.hold); err != nil {
				t.Fatalf("hold the writer: %v", err)
			}
			defer conn.ExecContext(context.Background(), "ROLLBACK")

			unknown := store.HashSecret("cascade_enroll_guessed")
			agent := newEndpoint(t, "ua")
			agent.Role, agent.AgentID = store.RoleAgent, "ua-1"
			for _, c := range []struct {
				name string
				h    store.Hash
				e    store.Endpoint
				want error
			}{
				{"unknown", unknown, newEndpoint(t, "x"), store.ErrNotFound},
				{"revoked", revoked, newEndpoint(t, "x"), store.ErrRevoked},
				{"expired", expired, newEndpoint(t, "x"), store.ErrExpired},
				{"used_up", usedUp, newEndpoint(t, "x"), store.ErrExhausted},
				{"role_not_allowed", clientsOnly, agent, store.ErrForbiddenRole},
			} {
				ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := st.Enroll(ctx, c.h, c.e)
				cancel()
				if !errors.Is(err, c.want) {
					t.Errorf("%s token while the writer is held: %v, want %v", c.name, err, c.want)
				}
			}
		})
	}
}

// newEndpoint returns an endpoint to enroll.
func newEndpoint(t *testing.T, host string) store.Endpoint {
	t.Helper()
	_, h, err := store.NewSecret("cascade_ep_")
	if err != nil {
		t.Fatal(err)
	}
	return store.Endpoint{Hostname: host, CredentialHash: h}
}
