package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// TestServerKeys: on both databases a recorded key is listed once (a
// second record refreshes its URL), oldest first, and forgetting removes
// it; forgetting an unknown key is ErrNotFound.
func TestServerKeys(t *testing.T) {
	for name, open := range map[string]func(testing.TB, func() time.Time) store.Store{
		"sqlite": openSQLite, "postgres": openPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			st := open(t, func() time.Time { now = now.Add(time.Second); return now })
			c := cluster(t, st)
			for _, k := range []store.ServerKey{{Fingerprint: "sha256:bb", URL: "https://b/"},
				{Fingerprint: "sha256:aa", URL: "https://a/"}, {Fingerprint: "sha256:bb", URL: "https://b2/"}} {
				if err := c.RecordServerKey(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.RecordServerKey(ctx, store.ServerKey{URL: "https://c/"}); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("record without a fingerprint: %v", err)
			}
			ks, err := c.ServerKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ks) != 2 || ks[0].Fingerprint != "sha256:aa" || ks[1].Fingerprint != "sha256:bb" || ks[1].URL != "https://b2/" ||
				!ks[1].Recorded.After(ks[0].Recorded) {
				t.Fatalf("keys %+v, want aa then bb (at https://b2/)", ks)
			}
			audited := func() context.Context {
				return store.WithAudit(ctx, store.NewAudit(store.AuditEntry{Actor: "cli", Kind: "server-key.forget", Target: "sha256:aa"}))
			}
			if err := c.ForgetServerKey(audited(), "sha256:aa"); err != nil {
				t.Fatal(err)
			}
			if err := c.ForgetServerKey(audited(), "sha256:aa"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("forget twice: %v", err)
			}
			// One entry: the failed forget recorded none.
			if es, err := st.ListAudit(ctx, store.AuditFilter{Kind: "server-key.forget"}); err != nil || len(es) != 1 || es[0].Target != "sha256:aa" {
				t.Fatalf("audit entries of forgetting: %+v %v", es, err)
			}
			if ks, err = c.ServerKeys(ctx); err != nil || len(ks) != 1 || ks[0].Fingerprint != "sha256:bb" {
				t.Fatalf("after forgetting aa: %+v %v", ks, err)
			}
		})
	}
}
