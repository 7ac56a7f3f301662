package policy

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// SourceKind says what a plan step or a custom-source entry points to.
type SourceKind string

// The kinds of update source.
const (
	Server SourceKind = "server" // the management server (standard source)
	Origin SourceKind = "origin" // the vendor's origin (ActiveUpdate)
	Agent  SourceKind = "agent"  // an update agent, by id
	URL    SourceKind = "url"    // a static HTTP mirror of the vendor repository
)

// Source is one update source. Its String form is the `source` of
// `cascade explain --json`: "server", "origin", "agent:ID", or the URL as
// written in the policy.
type Source struct {
	Kind    SourceKind
	AgentID string // Kind == Agent
	URL     string // Kind == URL or Origin: the URL as written
}

func (s Source) String() string {
	switch s.Kind {
	case Agent:
		return "agent:" + s.AgentID
	case URL:
		return s.URL
	default:
		return string(s.Kind)
	}
}

// agentID is what an update agent's id may contain.
var agentID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidAgentID reports whether id can name an update agent.
func ValidAgentID(id string) bool { return agentID.MatchString(id) }

// parseSource parses an entry's `source`: "agent:ID" or an absolute
// http(s) URL.
func parseSource(s string) (Source, error) {
	if id, ok := strings.CutPrefix(s, "agent:"); ok {
		if !ValidAgentID(id) {
			return Source{}, fmt.Errorf("source %q: agent id must be 1-128 letters, digits, '.', '_' or '-'", s)
		}
		return Source{Kind: Agent, AgentID: id}, nil
	}
	if _, err := normalURL(s); err != nil {
		return Source{}, fmt.Errorf("source %q is neither agent:ID nor an absolute http(s) URL: %v", s, err)
	}
	return Source{Kind: URL, URL: s}, nil
}

// normalURL returns the form in which two URLs naming the same source are
// equal: scheme and host lower-cased, default port dropped, trailing slashes
// ignored. It fails unless s is an absolute http or https URL with a host
// and without credentials, query or fragment.
func normalURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("scheme must be http or https")
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("URL has no host")
	case u.User != nil:
		return "", fmt.Errorf("URL must not carry credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("URL must not have a query or fragment")
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "http" && port == "80") && !(scheme == "https" && port == "443") {
		host += ":" + port
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// SameURL reports whether a and b name the same source (docs/update-process.md,
// The effective list: scheme and host case-insensitive, trailing slash ignored).
func SameURL(a, b string) bool {
	na, err1 := normalURL(a)
	nb, err2 := normalURL(b)
	return err1 == nil && err2 == nil && na == nb
}

// MarshalText writes s in its String form.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the String form of a source. "origin" reads back
// without its URL; resolve it through the policy.
func (s *Source) UnmarshalText(b []byte) error {
	switch t := string(b); t {
	case string(Server), string(Origin):
		*s = Source{Kind: SourceKind(t)}
		return nil
	default:
		src, err := parseSource(t)
		if err != nil {
			return err
		}
		*s = src
		return nil
	}
}
