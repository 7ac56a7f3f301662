package report

import (
	"errors"
	"fmt"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/plan"
)

// Validate checks what a receiver of a report relies on: a known trigger
// and role (or none), a run result Finish can produce, and categories
// that are known, each at most once, with a known result and no negative
// bytes or duration. The error is one line naming the first problem.
func (r *Report) Validate() error {
	if _, err := plan.ParseTrigger(string(r.Trigger)); err != nil {
		return fmt.Errorf("invalid report: %w", err)
	}
	if r.Role != "" {
		if _, err := plan.ParseRole(string(r.Role)); err != nil {
			return fmt.Errorf("invalid report: %w", err)
		}
	}
	switch r.Result {
	case Updated, UpToDate, Failed:
	default:
		return fmt.Errorf("invalid report: unknown result %q (want updated, up_to_date or failed)", r.Result)
	}
	seen := map[category.Category]bool{}
	for i, c := range r.Categories {
		if c == nil {
			return fmt.Errorf("invalid report: category %d is null", i)
		}
		if _, err := category.Parse(string(c.Category)); err != nil {
			return fmt.Errorf("invalid report: %w", err)
		}
		if seen[c.Category] {
			return fmt.Errorf("invalid report: category %s appears twice", c.Category)
		}
		seen[c.Category] = true
		switch c.Result {
		case Updated, UpToDate, Failed, Skipped:
		default:
			return fmt.Errorf("invalid report: category %s: unknown result %q", c.Category, c.Result)
		}
		if c.Bytes < 0 || c.FullBytes < 0 || c.Deltas < 0 || c.Duration < 0 {
			return errors.New("invalid report: category " + string(c.Category) + ": negative bytes or duration")
		}
	}
	return nil
}
