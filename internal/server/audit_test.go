package server_test

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// TestAuditAtomicAPI: an API change and its audit entry are committed
// together: while the database refuses audit entries, a role change is
// answered 500 and not made; once it accepts them again, the same
// request is made and recorded with its details.
func TestAuditAtomicAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		ctx := context.Background()
		ep, err := e.st.CreateEndpoint(ctx, store.Endpoint{Hostname: "pc-1", Domain: "default",
			CredentialHash: store.HashSecret("pc-1"), Addresses: []string{"10.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := server.LoadConfig(e.dir)
		if err != nil {
			t.Fatal(err)
		}
		dsn, driver := cfg.DSN(e.dir), "pgx"
		if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
			dsn, driver = path, "sqlite"
		}
		raw, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		exec := func(q string) {
			t.Helper()
			if _, err := raw.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		exec(`ALTER TABLE audit_log RENAME TO audit_log_gone`)
		role := api.SetRole{Role: "agent", AgentID: "ua-1"}
		err = e.admin.Call(ctx, http.MethodPut, "/api/v1/endpoints/"+ep.ID+"/role", nil, role, nil)
		if statusCode(err) != http.StatusInternalServerError {
			t.Fatalf("role change while the audit log refuses entries: %v, want 500", err)
		}
		if got, err := e.st.Endpoint(ctx, ep.ID); err != nil || got.Role != store.RoleClient {
			t.Fatalf("endpoint after the refused change: %+v, %v; want still a client", got, err)
		}
		exec(`ALTER TABLE audit_log_gone RENAME TO audit_log`)
		e.call(http.MethodPut, "/api/v1/endpoints/"+ep.ID+"/role", role, nil)
		es, err := e.st.ListAudit(ctx, store.AuditFilter{Kind: "endpoint.role"})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Target != ep.ID || !strings.Contains(es[0].Summary, "role agent ua-1") || es[0].After == "" {
			t.Fatalf("audit entries %+v: want one for the role change, with its details", es)
		}
	})
}
