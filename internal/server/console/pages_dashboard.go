package console

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// dashboardRows bounds each per-category list of the dashboard (programs,
// domains, a program's approvals): a site has few, and the content page
// lists them all.
const dashboardRows = 20

// dashboardProgram is a program as the dashboard shows it: the newest
// version mirrored from the origin and the version each domain has
// approved (the first dashboardRows domains; MoreApproved counts the
// others).
type dashboardProgram struct {
	Name         string
	Newest       string // "" when the mirrored copy no longer holds it
	Approved     []api.Approval
	MoreApproved int
}

// dashboardPrograms makes the dashboard's program rows from what the
// content page shows (Content.Programs and Content.Approvals): every
// program mirrored or approved somewhere, by name, the first limit of
// them, and how many more there are.
func dashboardPrograms(progs []ContentProgram, approvals []api.Approval, limit int) ([]dashboardProgram, int) {
	byName := map[string]*dashboardProgram{}
	row := func(name string) *dashboardProgram {
		p := byName[name]
		if p == nil {
			p = &dashboardProgram{Name: name}
			byName[name] = p
		}
		return p
	}
	for _, p := range progs {
		if len(p.Mirrored) > 0 {
			row(p.Name).Newest = p.Mirrored[0] // newest first
		} else {
			row(p.Name)
		}
	}
	for _, a := range approvals {
		p := row(a.Program)
		if len(p.Approved) < limit {
			p.Approved = append(p.Approved, a)
		} else {
			p.MoreApproved++
		}
	}
	out := make([]dashboardProgram, 0, len(byName))
	for _, p := range byName {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b dashboardProgram) int { return strings.Compare(a.Name, b.Name) })
	n := min(len(out), limit)
	return out[:n], len(out) - n
}

// dashboardDomain is a domain and the version of its settings document
// in force (GET /api/v1/domains/{domain}/settings).
type dashboardDomain struct {
	Name    string
	Version int64
	Updated time.Time
}

// dashboardDomains reads the first limit domains by name with their
// settings versions, and how many more domains there are.
func (c *Console) dashboardDomains(ctx context.Context, limit int) ([]dashboardDomain, int, error) {
	ds, err := c.st.ListDomains(ctx)
	if err != nil {
		return nil, 0, err
	}
	n := min(len(ds), limit)
	out := make([]dashboardDomain, 0, n)
	for _, d := range ds[:n] {
		s, err := c.st.DomainSettings(ctx, d.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since the list was read
		}
		if err != nil {
			return nil, 0, err
		}
		out = append(out, dashboardDomain{Name: d.Name, Version: s.Version, Updated: s.Updated})
	}
	return out, len(ds) - n, nil
}
