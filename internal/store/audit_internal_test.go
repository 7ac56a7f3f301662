package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// TestAuditRefusedByDatabase: when the database refuses a change's audit
// entry (here its table is gone), the change is undone with it, on both
// paths a change takes (a transaction of its own, a single statement).
func TestAuditRefusedByDatabase(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(testing.TB) string
	}{
		{"sqlite", func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "cascade.db") }},
		{"postgres", pgtest.DSN},
	} {
		t.Run(db.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := Open(ctx, db.dsn(t), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			s := st.(*sqlStore)
			if _, err := s.w.ExecContext(ctx, `ALTER TABLE audit_log RENAME TO audit_log_gone`); err != nil {
				t.Fatal(err)
			}
			a := NewAudit(AuditEntry{Actor: "cli", Kind: "domain.create", Target: "d"})
			if _, err := st.CreateDomain(WithAudit(ctx, a), "d"); err == nil {
				t.Fatal("a domain was created though its audit entry could not be written")
			}
			if _, err := st.Domain(ctx, "d"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("domain after the refused entry: %v, want ErrNotFound", err)
			}
			_, h, _ := NewSecret("t_")
			if _, err := st.CreateAdminToken(WithAudit(ctx, a), AdminToken{Name: "ops", Hash: h}); err == nil {
				t.Fatal("an admin token was created though its audit entry could not be written")
			}
			if ts, err := st.ListAdminTokens(ctx); err != nil || len(ts) != 0 {
				t.Fatalf("admin tokens after the refused entry: %v, %v; want none", ts, err)
			}
			if _, ok := a.Written(); ok {
				t.Fatal("the refused entry says it was written")
			}
		})
	}
}
