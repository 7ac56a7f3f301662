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
