package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestServerAccountManage: cascade server admin list --accounts, disable,
// enable and passwd on the database, each audited as cli; the last
// admin stays enabled.
func TestServerAccountManage(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out bytes.Buffer
	for _, o := range []serverAdminCreateOptions{{User: "alice"}, {User: "vera", Viewer: true}} {
		if err := runServerAccountCreate(ctx, st, o, strings.NewReader("a long enough password\n"), &out); err != nil {
			t.Fatal(err)
		}
	}
	vera, err := st.AccountByName(ctx, "vera")
	if err != nil {
		t.Fatal(err)
	}
	sess := store.HashSecret("vera's session")
	if _, err := st.CreateSession(ctx, store.Session{Hash: sess, AccountID: vera.ID}); err != nil {
		t.Fatal(err)
	}
	if err := accountDisable(ctx, st, "alice", true, "disable", &out); err == nil || !strings.Contains(err.Error(), "last enabled admin") {
		t.Fatalf("disabling the last admin: %v", err)
	}
	if err := accountDisable(ctx, st, "nobody", true, "disable", &out); err == nil || !strings.Contains(err.Error(), `no console account is called "nobody"`) {
		t.Fatalf("disabling an unknown account: %v", err)
	}
	if err := accountDisable(ctx, st, "vera", true, "disable", &out); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.TouchSession(ctx, sess, time.Hour, time.Hour); err == nil {
		t.Fatal("vera's session outlived her account's disabling")
	}
	out.Reset()
	if err := accountList(ctx, st, false, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "alice") || !strings.HasPrefix(lines[2], "vera") ||
		!strings.HasSuffix(lines[1], "-") || strings.HasSuffix(lines[2], "-") {
		t.Fatalf("account list:\n%s", out.String())
	}
	if err := accountDisable(ctx, st, "vera", false, "enable", &out); err != nil {
		t.Fatal(err)
	}
	if err := accountPasswd(ctx, st, "vera", strings.NewReader("short\n"), &out); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Fatalf("short password: %v", err)
	}
	if err := accountPasswd(ctx, st, "vera", strings.NewReader("another long password\n"), &out); err != nil {
		t.Fatal(err)
	}
	vera, err = st.AccountByName(ctx, "vera")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := console.VerifyPassword(vera.PasswordHash, "another long password"); !ok || !vera.Disabled.IsZero() {
		t.Fatalf("vera after enable and passwd: %+v", vera)
	}
	es, err := st.ListAudit(ctx, store.AuditFilter{Kind: "account."})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range es {
		if e.Actor != "cli" || e.Target == "" {
			t.Errorf("audit entry %+v", e)
		}
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "account.password,account.enable,account.disable,account.create,account.create" {
		t.Fatalf("audit kinds, newest first: %s", got)
	}
}
