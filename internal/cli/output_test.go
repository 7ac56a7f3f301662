package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/cascade-update/cascade/internal/server/api"
)

// fakeAdminAPI answers the admin API's read calls with fixed documents, so
// that the commands' output can be compared exactly, and returns the
// command-line flags that reach it (https, its key pinned, a token file).
func fakeAdminAPI(t *testing.T) []string {
	t.Helper()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	later := at.Add(90 * time.Second)
	notif := api.Notification{ID: "n-7", Created: at, Versions: map[string]string{"pattern": "17.736.00", "engine": "7.2"},
		AgentsFirst: true, ClientsReleased: &later,
		Deliveries: map[string]map[string]int{"agent": {"done": 2}, "client": {"done": 5, "pending": 1, "failed": 1}}}
	docs := map[string]any{
		"/api/v1/status": api.Status{URL: "https://10.0.0.1:8443/", Fingerprint: "sha256:ab12", Origin: "https://au.vendor.example/",
			Database: "sqlite /var/lib/cascade/server.db", Site: api.RepoStatus{Timestamp: 12, Expires: at.Add(24 * time.Hour)},
			LastSync: &api.SyncResult{Started: at, Finished: later, Timestamp: 41, Targets: 9, Fetched: 2, Bytes: 3 << 20,
				Deployed: map[string]string{"pattern": "17.736.00", "engine": "7.2"}, Notification: "n-7"},
			Connected: 6},
		"/api/v1/notifications":     []api.Notification{notif, {ID: "n-6", Created: at.Add(-time.Hour), Versions: map[string]string{"pattern": "17.735.00"}, Domain: "berlin"}},
		"/api/v1/notifications/n-7": notif,
		"/api/v1/syncs": []api.SyncLogEntry{{ID: "syn_2", Result: "failed", Server: "https://10.0.0.2:8443/",
			SyncResult: api.SyncResult{Started: later, Finished: later.Add(time.Second), Error: "mirror origin: connection refused"}},
			{ID: "syn_1", Result: "succeeded", Server: "https://10.0.0.1:8443/", Writer: true, SyncResult: api.SyncResult{Started: at,
				Finished: later, Timestamp: 41, Targets: 9, Fetched: 2, Bytes: 3 << 20, Deployed: map[string]string{"pattern": "17.736.00"}}}},
		"/api/v1/reports": []api.Report{{ID: "r-1", EndpointID: "pc-4711", ReceivedAt: later, Trigger: "notify-components", Result: "updated",
			Categories: []api.CategoryReport{
				{Category: "components", Result: "updated", Source: "agent:ua-berlin-1", Before: map[string]string{"pattern": "17.735.00", "engine": "7.2"},
					After: map[string]string{"pattern": "17.736.00", "engine": "7.2"}, Bytes: 1 << 20},
				{Category: "domain_settings", Result: "up_to_date", Source: "server"},
				{Category: "programs", Result: "skipped"}}}},
		"/api/v1/content/components": []api.Component{{Name: "engine", Latest: "7.2", Synced: at, Deployed: "7.2", DeployedAt: &at},
			{Name: "pattern", Latest: "17.736.00", Synced: later, Deployed: "17.735.00", Held: true}},
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := docs[r.URL.Path]
		if !ok || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	return []string{"--server", srv.URL + "/", "--fingerprint", api.KeyFingerprintOf(srv.Certificate()).String(),
		"--token-file", secretFile(t, "tok")}
}

// TestServerOutputTables: the status and listing commands print aligned
// tables with headers and versions as "engine 7.2", never Go map syntax.
func TestServerOutputTables(t *testing.T) {
	conn := fakeAdminAPI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "status"}, `url          https://10.0.0.1:8443/
fingerprint  sha256:ab12
vendor root  -
origin       https://au.vendor.example/
database     sqlite /var/lib/cascade/server.db
site         timestamp version 12, expires 2026-03-05T05:06:07Z
last sync    2026-03-04T05:07:37Z: updated (timestamp 41, 9 targets, 2 fetched, 3.0 MiB); deployed engine 7.2, pattern 17.736.00; notification n-7
connected    6 endpoints
writer       no
`},
		{[]string{"server", "notifications", "list"}, `ID   CREATED               DOMAIN  VERSIONS                       AGENTS FIRST  CLIENTS RELEASED
n-7  2026-03-04T05:06:07Z  (all)   engine 7.2, pattern 17.736.00  yes           2026-03-04T05:07:37Z
n-6  2026-03-04T04:06:07Z  berlin  pattern 17.735.00              no            -
`},
		{[]string{"server", "notifications", "show", "n-7"}, `notification      n-7
created           2026-03-04T05:06:07Z
domain            (all)
versions          engine 7.2, pattern 17.736.00
agents first      yes
clients released  2026-03-04T05:07:37Z

DELIVERIES  PENDING  DELIVERED  DONE  FAILED  TOTAL
agent       0        0          2     0       2
client      1        0          5     1       7
`},
		{[]string{"server", "reports"}, `RECEIVED              ENDPOINT  TRIGGER            RESULT   SOURCES                                               CHANGED
2026-03-04T05:07:37Z  pc-4711   notify-components  updated  components agent:ua-berlin-1, domain_settings server  engine 7.2, pattern 17.735.00 -> 17.736.00
`},
		{[]string{"server", "syncs"}, `FINISHED              STARTED               RESULT     FETCHED  BYTES    DEPLOYED           SERVER                                ERROR
2026-03-04T05:07:38Z  2026-03-04T05:07:37Z  failed     0 of 0   0 B      -                  https://10.0.0.2:8443/ (mirror only)  mirror origin: connection refused
2026-03-04T05:07:37Z  2026-03-04T05:06:07Z  succeeded  2 of 9   3.0 MiB  pattern 17.736.00  https://10.0.0.1:8443/                -
`},
		{[]string{"server", "components", "list"}, `COMPONENT  LATEST     DEPLOYED   HELD  SYNCED                DEPLOYED AT
engine     7.2        7.2        no    2026-03-04T05:06:07Z  2026-03-04T05:06:07Z
pattern    17.736.00  17.735.00  yes   2026-03-04T05:07:37Z  -
`},
	} {
		name := strings.Join(tc.args, " ")
		code, out, stderr := run(append(tc.args, conn...)...)
		if code != 0 || out != tc.want {
			t.Errorf("cascade %s: exit %d, stderr %q, stdout\n%s\nwant\n%s", name, code, stderr, out, tc.want)
		}
		code, out, stderr = run(append(append(tc.args, "--json"), conn...)...)
		if code != 0 {
			t.Fatalf("cascade %s --json: exit %d: %s", name, code, stderr)
		}
		checkSnakeCase(t, name+" --json", out)
	}
}

// checkSnakeCase fails unless out is JSON whose object keys are all
// snake_case (no upper-case letter anywhere).
func checkSnakeCase(t *testing.T, what, out string) {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, out)
	}
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if strings.IndexFunc(k, unicode.IsUpper) >= 0 {
					t.Errorf("%s: key %q at %s is not snake_case", what, k, path)
				}
				walk(x, path+"."+k)
			}
		case []any:
			for _, x := range v {
				walk(x, path+"[]")
			}
		}
	}
	walk(doc, "")
}

func TestVersionChange(t *testing.T) {
	for _, tc := range []struct {
		before, after map[string]string
		want          string
	}{
		{nil, nil, "-"},
		{nil, map[string]string{"pattern": "1.0"}, "pattern 1.0"},
		{map[string]string{"pattern": "1.0"}, map[string]string{"pattern": "1.0"}, "pattern 1.0"},
		{map[string]string{"pattern": "1.0"}, map[string]string{"pattern": "2.0", "engine": "7"}, "engine 7 (new), pattern 1.0 -> 2.0"},
		{map[string]string{"pattern": "1.0", "old": "3"}, map[string]string{"pattern": "1.0"}, "pattern 1.0, old 3 (removed)"},
	} {
		if got := versionChange(tc.before, tc.after); got != tc.want {
			t.Errorf("versionChange(%v, %v) = %q, want %q", tc.before, tc.after, got, tc.want)
		}
	}
}

// checkEndpointStatusOutput checks the table `cascade endpoint status`
// prints after one update from the origin that installed pattern 1.0.
func checkEndpointStatusOutput(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	want := []string{
		"endpoint test-client (client)",
		"",
		"CATEGORY         INSTALLED      SINCE                 PREVIOUS",
		"components       pattern 1.0    20",
		"domain_settings  not installed  -                     -",
		"programs         not installed  -                     -",
		"",
		"last update: run ",
		"CATEGORY         RESULT   SOURCE  BYTES  VERSIONS",
		"domain_settings  skipped  -       0 B    -",
		"components       updated  origin  10 B   pattern 1.0",
		"programs         skipped  -       0 B    -",
		"  domain_settings: no site repository is trusted (standalone endpoint): domain_settings come only from a server",
	}
	if len(lines) < len(want) {
		t.Fatalf("endpoint status:\n%s", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("endpoint status line %d = %q, want it to start with %q\n%s", i+1, lines[i], w, out)
		}
	}
	if strings.Contains(out, "map[") {
		t.Errorf("endpoint status shows Go map syntax:\n%s", out)
	}
}
