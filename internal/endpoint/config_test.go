package endpoint

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/strictyaml"
)

// TestConfigListsEveryProblem: a configuration with several problems
// reports each on its own line, in the file's terms (no Go type names),
// with a suggestion for a mistyped field.
func TestConfigListsEveryProblem(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown fields", "data_dri: d\ntrusted_roots: {vendr: r}\nschedule: {intervall: 1h}\nbogus: 1\n", []string{
			`line 1: unknown field "data_dri" (did you mean "data_dir"?)`,
			`line 2: unknown field "vendr" (did you mean "vendor"?)`,
			`line 3: unknown field "intervall" (did you mean "interval"?)`,
			`line 4: unknown field "bogus"`,
		}},
		{"wrong types", "data_dir: d\ntrusted_roots: {vendor: r}\nreports_keep: many\nhook_timeout: 5 min\nfetch: [1]\n", []string{
			"line 3: want a whole number, got the string `many`",
			"line 4: want a duration such as 30s or 5m, got the string `5 min`",
			"line 5: want a mapping, got a list",
		}},
		{"invalid values", "role: agent\naddresses: [10.0.0, 10.0.0.1, x]\nagents: {ua-1: ftp://x/}\nschedule: {interval: 1s}\n", []string{
			"agent_id: required for role agent",
			"data_dir: required",
			"trusted_roots.vendor: required",
			`addresses: "10.0.0" is not an IP address`,
			`addresses: "x" is not an IP address`,
			`agents.ua-1: "ftp://x/" is not an absolute http(s) URL`,
			"schedule.interval: 1s is shorter than 10s",
		}},
		{"serve on a client", "data_dir: d\ntrusted_roots: {vendor: r}\nrole: clent\nserve: {listen: ':1'}\n", []string{
			`role: "clent" is neither client nor agent`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), ".")
			var se *strictyaml.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v, want a *strictyaml.Error", err, err)
			}
			if fmt.Sprint(se.Problems) != fmt.Sprint(tc.want) {
				t.Fatalf("problems\n got %q\nwant %q", se.Problems, tc.want)
			}
			for _, p := range se.Problems {
				if strings.Contains(p, "endpoint.") || strings.Contains(p, "\n") {
					t.Errorf("problem %q names a Go type or spans lines", p)
				}
			}
		})
	}
}

// TestConfigServer: server: takes one URL or a list of them, in order,
// each normalised to end in "/"; every problem is a line of its own.
func TestConfigServer(t *testing.T) {
	const base = "data_dir: d\ntrusted_roots: {vendor: r}\n"
	many := "server: [" + strings.Repeat("https://s.example/x, ", 16) + "https://s.example/x]\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string // the URLs, or with problems the problems
		problems   bool
	}{
		{"absent", "", nil, false},
		{"one URL", "server: https://cascade.corp.example:8443\n", []string{"https://cascade.corp.example:8443/"}, false},
		{"a list", "server: [https://a.corp.example:8443/, 'https://b.corp.example:8443/cascade']\n",
			[]string{"https://a.corp.example:8443/", "https://b.corp.example:8443/cascade/"}, false},
		{"a block list", "server:\n  - https://a.example/\n  - https://b.example/\n", []string{"https://a.example/", "https://b.example/"}, false},
		{"empty", "server:\n", nil, false},
		{"plain http", "server: [https://a.example/, http://b.example/]\n", []string{
			"server: server URL http://b.example/: refused: over http:// the tokens, credentials, trust roots and policy it carries would " +
				"travel in clear and the pinned fingerprint would never be checked; use https://"}, true},
		{"not a URL", "server: [a.example]\n", []string{`server: server URL "a.example": want an absolute https:// URL`}, true},
		{"twice", "server: [https://a.example/, HTTPS://A.example]\n", []string{"server: HTTPS://A.example is listed twice"}, true},
		{"a mapping", "server: {url: https://a.example/}\n", []string{"line 3: want a server URL or a list of them, got a mapping"}, true},
		{"a list in the list", "server:\n  - https://a.example/\n  - [https://b.example/]\n", []string{"line 5: want a server URL, got a list"}, true},
		{"too many", many, []string{"server: 17 URLs, at most 16", "server: https://s.example/x is listed twice"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(base+tc.yaml), ".")
			if tc.problems {
				var se *strictyaml.Error
				if !errors.As(err, &se) {
					t.Fatalf("error %T %v, want a *strictyaml.Error", err, err)
				}
				if len(se.Problems) < len(tc.want) || fmt.Sprint(se.Problems[:len(tc.want)]) != fmt.Sprint(tc.want) {
					t.Fatalf("problems\n got %q\nwant %q", se.Problems, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(c.Server) != fmt.Sprint(tc.want) || len(c.Server) != len(tc.want) {
				t.Fatalf("server %q, want %q", c.Server, tc.want)
			}
		})
	}
}
