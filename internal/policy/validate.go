package policy

import (
	"fmt"
	"strings"

	"github.com/cascade-update/cascade/internal/strictyaml"
)

// ValidationError lists every problem of an invalid policy, one line each.
// Its Error form is the first problem (and how many more there are), so a
// command can print one clear line.
type ValidationError struct {
	Problems []string
	// Entries holds, for each problem, the 1-based number of the
	// custom_sources entry it concerns, or 0 for a problem of the document
	// as a whole (a field, or a YAML error). It is nil or as long as
	// Problems; read it through Entry.
	Entries []int
}

// Entry returns the 1-based number of the custom_sources entry that
// problem i concerns, or 0 when it concerns no entry.
func (e *ValidationError) Entry(i int) int {
	if i < 0 || i >= len(e.Entries) {
		return 0
	}
	return e.Entries[i]
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 0 {
		return "invalid policy"
	}
	return (&strictyaml.Error{Problems: e.Problems}).Error()
}

// Validate checks p, fills in defaults for empty modes and parses every
// entry. It must succeed before p is planned with.
func (p *Policy) Validate() error {
	var v validator
	v.url("origin", p.Origin)
	v.url("server", p.Server)
	p.Clients.Source = v.mode("clients.source", p.Clients.Source)
	p.Agents.Source = v.mode("agents.source", p.Agents.Source)
	if n := len(p.CustomSources); n > MaxSources {
		v.entry(MaxSources+1, "custom_sources entry %d: the list holds at most %d entries (it has %d)", MaxSources+1, MaxSources, n)
	}
	seen := make(map[string]int, len(p.CustomSources))
	for i := range p.CustomSources {
		e := &p.CustomSources[i]
		n := i + 1
		rng, err := ParseRange(e.Addresses)
		if err != nil {
			v.entry(n, "custom_sources entry %d: addresses: %v", n, err)
		}
		src, err := parseSource(e.Source)
		if err != nil {
			v.entry(n, "custom_sources entry %d: %v", n, err)
		}
		if src.Kind == URL && p.Origin != "" && SameURL(src.URL, p.Origin) {
			src = Source{Kind: Origin, URL: p.Origin}
		}
		e.rng, e.src, e.key = rng, src, sourceKey(src)
		if !rng.From.IsValid() || src.Kind == "" {
			continue
		}
		key := rng.String() + " " + e.Key()
		if first, dup := seen[key]; dup {
			v.entry(n, "custom_sources entry %d: duplicates entry %d (%s %s)", n, first, rng, e.Source)
			continue
		}
		seen[key] = n
	}
	return v.err()
}

type validator struct {
	problems []string
	entries  []int
}

// add records a problem of the document as a whole.
func (v *validator) add(format string, args ...any) { v.entry(0, format, args...) }

// entry records a problem of custom_sources entry n (1-based).
func (v *validator) entry(n int, format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
	v.entries = append(v.entries, n)
}

func (v *validator) url(field, s string) {
	if strings.TrimSpace(s) == "" {
		v.add("%s: missing URL", field)
		return
	}
	if _, err := normalURL(s); err != nil {
		v.add("%s: %q is not an absolute http(s) URL: %v", field, s, err)
	}
}

func (v *validator) mode(field string, m Mode) Mode {
	switch m {
	case "":
		return Standard
	case Standard, Customized:
		return m
	}
	v.add("%s: %q is neither standard nor customized", field, m)
	return m
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems, Entries: v.entries}
}
