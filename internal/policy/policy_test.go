package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const base = `origin: https://updates.vendor.example/
server: https://cascade.corp.example:8443/
`

func TestParseExample(t *testing.T) {
	p, err := Load(filepath.Join("..", "..", "examples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Clients.Source != Customized || p.Agents.Source != Customized {
		t.Errorf("modes = %q/%q", p.Clients.Source, p.Agents.Source)
	}
	if len(p.CustomSources) != 5 {
		t.Fatalf("entries = %d", len(p.CustomSources))
	}
	e := p.CustomSources[0]
	if e.Src().Kind != Agent || e.Src().AgentID != "ua-berlin-1" || e.Range().String() != "10.1.0.0-10.1.255.255" {
		t.Errorf("entry 1 = %+v", e)
	}
}

func TestParseDefaults(t *testing.T) {
	p, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{
		Origin: "https://updates.vendor.example/", Server: "https://cascade.corp.example:8443/",
		Clients: Clients{Source: Standard}, Agents: Agents{Source: Standard},
		FallbackToServer: Fallback{Components: true, DomainSettings: true, Programs: true},
	}
	if fmt.Sprint(*p) != fmt.Sprint(want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", *p, want)
	}
	p, err = Parse([]byte(base + "fallback_to_server: {domain_settings: false}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f := p.FallbackToServer; !f.Components || f.DomainSettings || !f.Programs {
		t.Errorf("fallback = %+v, want only domain_settings off", f)
	}
}

func TestOriginEntry(t *testing.T) {
	// docs/update-process.md, The effective list: "A URL entry equal to the origin URL (scheme and
	// and host compared case-insensitively, a trailing slash ignored) is the
	// origin."
	tests := []struct {
		url    string
		origin bool
	}{
		{"https://updates.vendor.example/", true},
		{"https://updates.vendor.example", true},
		{"HTTPS://Updates.Vendor.Example//", true},
		{"https://updates.vendor.example:443/", true},
		{"http://updates.vendor.example/", false},
		{"https://updates.vendor.example/au/", false},
		{"https://updates.vendor.example:8443/", false},
	}
	for _, tt := range tests {
		p, err := Parse([]byte(base + "custom_sources:\n  - {addresses: 10.0.0.0/8, source: \"" + tt.url + "\"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		src := p.CustomSources[0].Src()
		if got := src.Kind == Origin; got != tt.origin {
			t.Errorf("%s is origin = %v, want %v", tt.url, got, tt.origin)
		}
		if tt.origin && (src.String() != "origin" || src.URL != "https://updates.vendor.example/") {
			t.Errorf("%s: origin source = %q with URL %q", tt.url, src, src.URL)
		}
	}
}

func entries(n int) string {
	var b strings.Builder
	b.WriteString(base + "custom_sources:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {addresses: 10.%d.%d.0/24, source: \"agent:ua-%d\"}\n", i/256, i%256, i)
	}
	return b.String()
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		// The source document: "the Customized Update Source List, which can accommodate up to 1024 update sources".
		{"1025 entries", entries(1025), "custom_sources entry 1025: the list holds at most 1024 entries (it has 1025)"},
		{"start after end", base + "custom_sources:\n  - {addresses: 10.1.255.255-10.1.0.0, source: agent:a}\n",
			"custom_sources entry 1: addresses: range start 10.1.255.255 is after its end 10.1.0.0"},
		{"mixed families", base + "custom_sources:\n  - {addresses: 10.1.0.0/16, source: agent:a}\n  - {addresses: 10.0.0.1-::1, source: agent:a}\n",
			"custom_sources entry 2: addresses: range 10.0.0.1-::1 mixes IPv4 and IPv6"},
		{"CIDR with host bits", base + "custom_sources:\n  - {addresses: 10.3.0.5/16, source: agent:a}\n",
			`custom_sources entry 1: addresses: "10.3.0.5/16" has host bits set (did you mean 10.3.0.0/16? a single address is written without /16)`},
		{"bad address", base + "custom_sources:\n  - {addresses: 10.1.0, source: agent:a}\n", `custom_sources entry 1: addresses: "10.1.0" is not an IP address`},
		{"ftp source", base + "custom_sources:\n  - {addresses: 10.0.0.1, source: \"ftp://m.example/\"}\n",
			`custom_sources entry 1: source "ftp://m.example/" is neither agent:ID nor an absolute http(s) URL: scheme must be http or https`},
		{"relative source", base + "custom_sources:\n  - {addresses: 10.0.0.1, source: mirror/cascade}\n",
			`custom_sources entry 1: source "mirror/cascade" is neither agent:ID nor an absolute http(s) URL`},
		{"empty agent id", base + "custom_sources:\n  - {addresses: 10.0.0.1, source: \"agent:\"}\n", `custom_sources entry 1: source "agent:": agent id must be`},
		{"missing source", base + "custom_sources:\n  - {addresses: 10.0.0.1}\n", `custom_sources entry 1: source "" is neither agent:ID nor an absolute http(s) URL`},
		{"url with credentials", base + "custom_sources:\n  - {addresses: 10.0.0.1, source: \"https://u:p@m.example/\"}\n", "must not carry credentials"},
		{"exact duplicate", base + "custom_sources:\n  - {addresses: 10.0.0.0/8, source: agent:a}\n  - {addresses: 10.1.0.0/16, source: agent:b}\n  - {addresses: 10.0.0.0-10.255.255.255, source: agent:a}\n",
			"custom_sources entry 3: duplicates entry 1 (10.0.0.0-10.255.255.255 agent:a)"},
		{"duplicate URL spelling", base + "custom_sources:\n  - {addresses: 10.0.0.0/8, source: \"https://m.example/x/\"}\n  - {addresses: 10.0.0.0/8, source: \"HTTPS://M.example/x\"}\n",
			"custom_sources entry 2: duplicates entry 1"},
		{"missing origin", "server: https://s.example/\n", "origin: missing URL"},
		{"missing server", "origin: https://o.example/\n", "server: missing URL"},
		{"relative origin", "origin: updates\nserver: https://s.example/\n", `origin: "updates" is not an absolute http(s) URL`},
		{"bad client mode", base + "clients: {source: nearest}\n", `clients.source: "nearest" is neither standard nor customized`},
		{"bad agent mode", base + "agents: {source: CUSTOMIZED}\n", `agents.source: "CUSTOMIZED" is neither standard nor customized`},
		{"unknown top-level field", base + "fallback: true\n", `line 3: unknown field "fallback"`},
		{"unknown nested field", base + "agents: {only_from_srv: true}\n", `line 3: unknown field "only_from_srv" (did you mean "only_from_server"?)`},
		{"unknown field, two", base + "clients: {sorce: customized}\nfallback_to_server: {component: false}\n",
			`line 3: unknown field "sorce" (did you mean "source"?) (and 1 more problem)`},
		{"unknown entry field", base + "custom_sources:\n  - {addresses: 10.0.0.1, source: agent:a, weight: 2}\n", `unknown field "weight"`},
		{"wrong type", base + "download_from_origin: sometimes\n", "line 3: want true or false, got the string `sometimes`"},
		{"duplicate key", base + "origin: https://other.example/\n", "already defined"},
		{"two documents", base + "---\n" + base, "single YAML document"},
		{"empty", "  \n", "policy is empty"},
		{"not a mapping", "- a\n- b\n", "line 1: want a mapping, got a list"},
		{"too large", base + "# " + strings.Repeat("x", MaxSize) + "\n", "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse accepted an invalid policy, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestValidationErrorListsEveryProblem(t *testing.T) {
	_, err := Parse([]byte("server: https://s.example/\ncustom_sources:\n  - {addresses: 2-1, source: x}\n"))
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("error %T %v, want *ValidationError", err, err)
	}
	if len(ve.Problems) != 3 {
		t.Fatalf("problems = %q, want origin, addresses and source", ve.Problems)
	}
	if !strings.HasSuffix(err.Error(), "(and 2 more problems)") {
		t.Errorf("Error() = %q", err)
	}
}

// TestValidationErrorEntries: each problem names the custom_sources entry
// it concerns (1-based), 0 for a problem of the document, so that an
// editor can show it next to that entry.
func TestValidationErrorEntries(t *testing.T) {
	_, err := Parse([]byte("server: https://s.example/\ncustom_sources:\n" +
		"  - {addresses: 10.0.0.0/8, source: \"agent:a\"}\n" +
		"  - {addresses: 10.0.0.300, source: \"agent:a\"}\n" +
		"  - {addresses: 10.0.0.0-10.255.255.255, source: \"agent:a\"}\n" +
		"  - {addresses: 10.1.0.0/16, source: \"ftp://x\"}\n"))
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("error %T %v, want *ValidationError", err, err)
	}
	var got []string
	for i, p := range ve.Problems {
		got = append(got, fmt.Sprintf("%d %s", ve.Entry(i), p))
	}
	want := []string{
		"0 origin: missing URL",
		`2 custom_sources entry 2: addresses: "10.0.0.300" is not an IP address`,
		"3 custom_sources entry 3: duplicates entry 1 (10.0.0.0-10.255.255.255 agent:a)",
		`4 custom_sources entry 4: source "ftp://x" is neither agent:ID nor an absolute http(s) URL: scheme must be http or https`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems by entry\n got %q\nwant %q", got, want)
	}
	// A decoding problem concerns no entry.
	_, err = Parse([]byte(base + "bogus: 1\n"))
	if ve, ok := err.(*ValidationError); !ok || ve.Entry(0) != 0 || ve.Entry(-1) != 0 {
		t.Fatalf("decode error %v: entry %d", err, ve.Entry(0))
	}
}

// TestDecodeProblemsEachOnALine: every problem the decoder finds is one
// entry of the ValidationError, with a suggestion for a near field name
// and no Go type names.
func TestDecodeProblemsEachOnALine(t *testing.T) {
	_, err := Parse([]byte(base + "fallback_to_servr: {}\ncustom_sources:\n  - {addresses: 10.0.0.0/8, source: agent:a, weight: 2}\n"))
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("error %T %v, want *ValidationError", err, err)
	}
	want := []string{`line 3: unknown field "fallback_to_servr" (did you mean "fallback_to_server"?)`, `line 5: unknown field "weight"`}
	if fmt.Sprint(ve.Problems) != fmt.Sprint(want) {
		t.Fatalf("problems\n got %q\nwant %q", ve.Problems, want)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte(base+"bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), "policy "+path+": ") {
		t.Fatalf("Load error = %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("..", "..", "examples", "policy.yaml")); err == nil {
		f.Add(data)
	}
	f.Add([]byte(base))
	f.Add([]byte(entries(3)))
	f.Add([]byte(base + "custom_sources:\n  - {addresses: \"2001:db8::/32\", source: \"https://updates.vendor.example\"}\n"))
	f.Add([]byte("{origin: 1, server: [2]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		if len(p.CustomSources) > MaxSources {
			t.Fatalf("accepted %d entries", len(p.CustomSources))
		}
		for i, e := range p.CustomSources {
			if !e.Range().From.IsValid() || e.Src().Kind == "" {
				t.Fatalf("entry %d accepted unparsed: %+v", i+1, e)
			}
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("a parsed policy does not validate again: %v", err)
		}
	})
}
