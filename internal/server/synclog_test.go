package server_test

import (
	"context"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/cascade-update/cascade/internal/server/api"
)

// TestSyncLog checks that every sync, succeeded, up to date or failed,
// is logged in the store and listed by GET /api/v1/syncs, newest first.
func TestSyncLog(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := contentEnv(t, db) // the server's first sync at start, then contentEnv's
		var log []api.SyncLogEntry
		e.call(http.MethodGet, "/api/v1/syncs", nil, &log)
		if len(log) != 2 || log[1].Finished.After(log[0].Started) || log[0].Result != "succeeded" || !log[0].Writer || log[0].Server != e.url ||
			log[0].Deployed["pattern"] != "1.0" || log[0].Fetched == 0 || log[0].Finished.IsZero() {
			t.Fatalf("sync log after two syncs: %+v", log)
		}
		if res := e.sync(); !res.UpToDate {
			t.Fatalf("second sync: %+v", res)
		}
		// A timestamp the origin cannot vouch for fails the next sync.
		ts := ""
		_ = filepath.WalkDir(e.origin.repo.PublishedDir(), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "timestamp.json" {
				ts = p
			}
			return nil
		})
		if ts == "" {
			t.Fatal("the origin has no timestamp.json")
		}
		if err := os.WriteFile(ts, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = e.admin.Call(context.Background(), http.MethodPost, "/api/v1/content/sync", nil, nil, nil)
		if err := e.admin.Call(context.Background(), http.MethodGet, "/api/v1/syncs", url.Values{"limit": {"2"}}, nil, &log); err != nil {
			t.Fatal(err)
		}
		if len(log) != 2 || log[0].Result != "failed" || log[0].Error == "" || log[1].Result != "up to date" ||
			!log[1].UpToDate || len(log[1].Deployed) != 0 {
			t.Fatalf("sync log after three syncs, limit 2: %+v", log)
		}
		for _, q := range []string{"0", "1001", "x"} {
			err := e.admin.Call(context.Background(), http.MethodGet, "/api/v1/syncs", url.Values{"limit": {q}}, nil, nil)
			if statusCode(err) != http.StatusBadRequest {
				t.Errorf("limit=%s: %v, want 400", q, err)
			}
		}
	})
}
