package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePolicy(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const explainPolicy = `origin: https://au.vendor.example/
server: https://server.corp.example/
clients: {source: customized}
agents: {source: customized}
fallback_to_server: {components: false}
custom_sources:
  - {addresses: 10.1.0.0-10.1.255.255, source: "agent:ua-1"}
  - {addresses: 10.1.0.0/16, source: "https://Mirror.corp.example/c/"}
  - {addresses: 10.0.0.0/8, source: "https://AU.vendor.example"}
`

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestExplainJSON(t *testing.T) {
	path := writePolicy(t, explainPolicy)
	code, out, stderr := run("explain", "--policy", path, "--role", "agent", "--agent-id", "ua-9",
		"--address", "10.1.2.3", "--address", "192.0.2.1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Role       string `json:"role"`
		Trigger    string `json:"trigger"`
		Categories map[string][]struct {
			Source string `json:"source"`
			Why    string `json:"why"`
		} `json:"categories"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if doc.Role != "agent" || doc.Trigger != "scheduled" {
		t.Errorf("role/trigger = %s/%s", doc.Role, doc.Trigger)
	}
	got := map[string]string{}
	for c, steps := range doc.Categories {
		var s []string
		for _, st := range steps {
			if st.Why == "" {
				t.Errorf("%s: %s has no why", c, st.Source)
			}
			s = append(s, st.Source)
		}
		got[c] = strings.Join(s, " ")
	}
	want := map[string]string{
		// The URL as written in the policy; the origin entry as "origin",
		// tried once at its position (fallback off, origin listed).
		"components":      "agent:ua-1 https://Mirror.corp.example/c/ origin",
		"domain_settings": "agent:ua-1 server",
		"programs":        "agent:ua-1 server",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("categories:\n got %v\nwant %v", got, want)
	}
}

func TestExplainNotifyComponentsOnly(t *testing.T) {
	path := writePolicy(t, explainPolicy)
	code, out, stderr := run("explain", "--policy", path, "--role", "client", "--address", "10.9.0.1",
		"--trigger", "notify-components", "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	want := `{"role":"client","trigger":"notify-components","categories":{"components":[{"source":"origin","why":"entry 3 (10.0.0.0/8) covers 10.9.0.1; its URL is the origin"}]}}` + "\n"
	if out != want {
		t.Errorf("output:\n got %s\nwant %s", out, want)
	}
}

func TestExplainText(t *testing.T) {
	code, out, stderr := run("explain", "--policy", filepath.Join("..", "..", "examples", "policy.yaml"),
		"--role", "agent", "--agent-id", "ua-berlin-1", "--address", "10.1.0.5")
	if code != 0 {
		t.Fatal(stderr)
	}
	for _, want := range []string{
		"components       1  agent:ua-berlin-2",
		"domain_settings  2  server",
		"note: entry 1 (agent:ua-berlin-1) skipped for components: an agent never lists itself",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainErrors(t *testing.T) {
	var many strings.Builder
	many.WriteString("origin: https://o.example/\nserver: https://s.example/\ncustom_sources:\n")
	for i := 0; i < 1025; i++ {
		fmt.Fprintf(&many, "  - {addresses: 10.%d.%d.1, source: \"agent:a\"}\n", i/256, i%256)
	}
	tooMany := writePolicy(t, many.String())
	bad := writePolicy(t, "origin: https://o.example/\nserver: https://s.example/\ncustom_sources:\n  - {addresses: 10.0.0.9-10.0.0.1, source: agent:a}\n")
	good := writePolicy(t, explainPolicy)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"1025 entries", []string{"--policy", tooMany, "--role", "client", "--address", "10.0.0.1"}, "custom_sources entry 1025: the list holds at most 1024 entries"},
		{"start after end", []string{"--policy", bad, "--role", "client", "--address", "10.0.0.1"}, "custom_sources entry 1: addresses: range start 10.0.0.9 is after its end 10.0.0.1"},
		{"missing file", []string{"--policy", filepath.Join(t.TempDir(), "nope.yaml"), "--role", "client", "--address", "10.0.0.1"}, "no such file"},
		{"no policy", []string{"--role", "client", "--address", "10.0.0.1"}, "--policy is required"},
		{"bad role", []string{"--policy", good, "--role", "relay", "--address", "10.0.0.1"}, `unknown role "relay"`},
		{"bad trigger", []string{"--policy", good, "--role", "client", "--address", "10.0.0.1", "--trigger", "hourly"}, `unknown trigger "hourly"`},
		{"no address", []string{"--policy", good, "--role", "client"}, "at least one --address"},
		{"bad address", []string{"--policy", good, "--role", "client", "--address", "10.0.0"}, `--address "10.0.0" is not an IP address`},
		{"unknown flag", []string{"--policy", good, "--role", "client", "--address", "10.0.0.1", "--verbose"}, "unknown flag: --verbose"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := run(append([]string{"explain", "--json"}, tt.args...)...)
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want one line containing %q", stderr, tt.want)
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	code, out, _ := run("policy", "check", filepath.Join("..", "..", "examples", "policy.yaml"))
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("valid policy: exit %d, %q", code, out)
	}
	bad := writePolicy(t, "server: https://s.example/\ncustom_sources:\n  - {addresses: 2-1, source: x}\n")
	code, out, stderr := run("policy", "check", bad)
	if code != 2 || out != "" {
		t.Errorf("invalid policy: exit %d, stdout %q", code, out)
	}
	if n := strings.Count(stderr, "\n"); n != 3 {
		t.Errorf("stderr has %d lines, want one per problem (3):\n%s", n, stderr)
	}
}
