// Package category names the three kinds of update content of
// docs/update-process.md (Categories) and what each may come from.
package category

import "fmt"

// Category is a kind of update content. The string values are a fixed
// interface: they appear in policies, plans, reports and JSON.
type Category string

// The categories of docs/update-process.md.
const (
	// Components are patterns and engines: versioned files signed by the
	// vendor. They may come from custom sources, the server and the origin.
	Components Category = "components"
	// DomainSettings are per-domain configuration documents and the
	// update-source policy itself, signed by the server. They may come from
	// update agents and the server only.
	DomainSettings Category = "domain_settings"
	// Programs are endpoint program builds and hotfixes (vendor payload,
	// server approval). They may come from update agents and the server only.
	Programs Category = "programs"
)

// All lists every category in the order an update run handles them.
var All = []Category{Components, DomainSettings, Programs}

// Parse returns the category named s.
func Parse(s string) (Category, error) {
	for _, c := range All {
		if string(c) == s {
			return c, nil
		}
	}
	return "", fmt.Errorf("unknown category %q (want components, domain_settings or programs)", s)
}

// FromOrigin reports whether the origin can serve c. The source document: "You can only
// update components from the Active Update server."
func (c Category) FromOrigin() bool { return c == Components }

// FromURL reports whether a custom URL source (a static mirror of the
// vendor repository) can serve c. The source document: "Domain settings, programs and hot
// fixes can only be downloaded from the server or Update Agents."
func (c Category) FromURL() bool { return c == Components }
