package endpoint

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/server/api"
)

// TestEnrollWritesAgentListen: an enrolled update agent's configuration
// says to serve where its --agent-url says; a client's has no serve:.
func TestEnrollWritesAgentListen(t *testing.T) {
	for _, c := range []struct{ role, url, want string }{
		{"agent", "http://127.0.20.1:8081/", "127.0.20.1:8081"},
		{"agent", "http://[::1]:9000/", "[::1]:9000"},
		{"agent", "https://ua-berlin-1.example/", ":443"},
		{"agent", "http://ua-berlin-1.example:8080", ":8080"},
		{"client", "", ""},
	} {
		dir := t.TempDir()
		o := EnrollOptions{Config: filepath.Join(dir, "endpoint.yaml"), DataDir: filepath.Join(dir, "data"),
			Hostname: "h", AgentURL: c.url}
		res := &api.EnrollResponse{Role: c.role, Domain: "default", EndpointID: "ep-1", Policy: "origin: http://o/\n"}
		if c.role == "agent" {
			res.AgentID = "ua-1"
		}
		if err := writeEnrollment(o, enrollment{URL: "https://s/", EndpointID: "ep-1", Domain: "default"}, res); err != nil {
			t.Fatalf("%s %s: %v", c.role, c.url, err)
		}
		cfg, err := LoadConfig(o.Config)
		if err != nil {
			t.Fatal(err)
		}
		want := c.want
		if want == "" {
			want = ":8080" // the default, for an agent designated later
		}
		if c.role == "agent" && cfg.Serve.Listen != want {
			t.Errorf("%s: serve.listen %q, want %q", c.url, cfg.Serve.Listen, want)
		}
	}
	for _, bad := range []string{"ftp://h:1/", "http:///x", "::"} {
		if _, err := agentListen(bad); err == nil || !strings.Contains(err.Error(), "not an absolute http(s) URL") {
			t.Errorf("agentListen(%q): %v", bad, err)
		}
	}
}
