package store_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// migrationCount is how many migrations each dialect has: every one is
// recorded in schema_migrations once.
const migrationCount = 12

// TestUpgradeFrom1: a database made by schema version 1 keeps its
// enrollment tokens across the upgrade; they enroll clients, not update
// agents (0002 adds enrollment_tokens.agents, false for existing rows).
// Its endpoints' addresses are indexed for the address-range filter
// (0011's Go step).
func TestUpgradeFrom1(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			db := rawDB(t, b.name, dsn)
			init, err := os.ReadFile(filepath.Join("migrations", b.name, "0001_init.sql"))
			if err != nil {
				t.Fatal(err)
			}
			stmts := []string{
				`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`,
				string(init),
				`INSERT INTO schema_migrations VALUES (1, '0001_init.sql', '2030-01-01T00:00:00.000000Z')`,
				`INSERT INTO domains VALUES ('d', '2030-01-01T00:00:00.000000Z')`,
				`INSERT INTO enrollment_tokens (id, secret_hash, domain, max_uses, uses, created_at)
					VALUES ('enr_old', '` + store.HashSecret("old").String() + `', 'd', 0, 0, '2030-01-01T00:00:00.000000Z')`,
				`INSERT INTO endpoints (id, hostname, domain, role, addresses, credential_hash, enrolled_at, last_seen_at, installed)
					VALUES ('ep_old', 'old-pc', 'd', 'client', '["10.9.0.7","2001:db8::7"]', '` + store.HashSecret("c0").String() + `', '2030-01-01T00:00:00.000000Z',
					'2030-01-01T00:00:00.000000Z', '{}')`,
			}
			if b.name == "postgres" {
				stmts[0] = `CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)`
			}
			for _, s := range stmts {
				if _, err := db.Exec(s); err != nil {
					t.Fatalf("version 1 database: %v", err)
				}
			}
			st := openDSN(t, dsn, time.Now)
			ctx := context.Background()
			ts, err := st.ListEnrollmentTokens(ctx, "")
			if err != nil || len(ts) != 1 || ts[0].ID != "enr_old" || ts[0].Agents {
				t.Fatalf("tokens after the upgrade: %+v %v", ts, err)
			}
			_, err = st.Enroll(ctx, store.HashSecret("old"), store.Endpoint{Hostname: "ua", Role: store.RoleAgent,
				AgentID: "ua-1", CredentialHash: store.HashSecret("c1")})
			if !errors.Is(err, store.ErrForbiddenRole) {
				t.Fatalf("agent with an old token: %v, want %v", err, store.ErrForbiddenRole)
			}
			if _, err := st.Enroll(ctx, store.HashSecret("old"), store.Endpoint{Hostname: "pc",
				CredentialHash: store.HashSecret("c2")}); err != nil {
				t.Fatalf("client with an old token: %v", err)
			}
			for _, r := range [][2]string{{"10.9.0.0", "10.9.0.255"}, {"2001:db8::", "2001:db8::ff"}} {
				rows, _, err := st.QueryEndpoints(ctx, store.EndpointQuery{AddrFrom: netip.MustParseAddr(r[0]), AddrTo: netip.MustParseAddr(r[1])})
				if err != nil || len(rows) != 1 || rows[0].ID != "ep_old" {
					t.Fatalf("endpoints in %s-%s after the upgrade: %+v %v", r[0], r[1], rows, err)
				}
			}
			if n := countMigrations(t, b.name, dsn); n != migrationCount {
				t.Fatalf("schema_migrations has %d rows, want %d", n, migrationCount)
			}
		})
	}
}
