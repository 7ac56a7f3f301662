package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

func TestServerAccountCreate(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out bytes.Buffer
	o := serverAdminCreateOptions{User: "vera", Viewer: true}
	if err := runServerAccountCreate(ctx, st, o, strings.NewReader("a long enough password\n"), &out); err != nil {
		t.Fatal(err)
	}
	a, err := st.AccountByName(ctx, "vera")
	if err != nil || a.Role != store.AccountViewer {
		t.Fatalf("account %+v (%v), want a viewer", a, err)
	}
	if ok, err := console.VerifyPassword(a.PasswordHash, "a long enough password"); !ok || err != nil {
		t.Fatalf("stored hash does not verify the password read from stdin: %v", err)
	}
	if !strings.HasPrefix(a.PasswordHash, "$argon2id$") || strings.Contains(a.PasswordHash, "long enough") {
		t.Fatalf("stored hash %q", a.PasswordHash)
	}
	es, err := st.ListAudit(ctx, store.AuditFilter{Kind: "account.create"})
	if err != nil || len(es) != 1 || es[0].Actor != "cli" || es[0].Target != "vera" {
		t.Fatalf("audit %+v (%v)", es, err)
	}
	// Refused: a second account of that name, a short password, an empty
	// stdin, a bad name; none stores anything.
	for _, c := range []struct {
		o     serverAdminCreateOptions
		stdin string
		want  string
	}{
		{serverAdminCreateOptions{User: "vera"}, "another long password\n", "exists already"},
		{serverAdminCreateOptions{User: "walt"}, "short\n", "at least 12"},
		{serverAdminCreateOptions{User: "walt"}, "", "stdin is empty"},
		{serverAdminCreateOptions{User: "has space"}, "a long enough password\n", "must be 1-64"},
	} {
		err := runServerAccountCreate(ctx, st, c.o, strings.NewReader(c.stdin), &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v with %q: %v, want %q", c.o, c.stdin, err, c.want)
		}
	}
	all, err := st.ListAccounts(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("accounts after refusals: %+v (%v)", all, err)
	}
}
