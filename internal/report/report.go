// Package report is the structured account of one update run: the trigger,
// the plan, and per category the result, the chosen source, the versions
// before and after, bytes and time, and for every source tried why it was
// unable to update. Reports are logged, kept locally (the last N runs) and
// sent to the server, which builds its analytics from them.
package report

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/plan"
)

// Result is how a category (or a whole run) ended.
type Result string

// The results of a category. A run's overall result is the worst of its
// categories': Failed if any failed, else Updated if any updated, else
// UpToDate.
const (
	Updated  Result = "updated"    // a source brought it up to date by installing
	UpToDate Result = "up_to_date" // a source confirmed the installed state is current
	Failed   Result = "failed"     // every source was unable to update: the category quits
	Skipped  Result = "skipped"    // the endpoint cannot update this category at all (see Error)
)

// Report is one update run.
type Report struct {
	ID       string       `json:"id"`
	Endpoint string       `json:"endpoint,omitempty"`
	Role     plan.Role    `json:"role"`
	Trigger  plan.Trigger `json:"trigger"`
	// Announced are the component versions the server announced with a
	// notify-components trigger (empty otherwise); sources behind them are
	// stale.
	Announced map[string]string `json:"announced,omitempty"`
	// Notification is the id of the server notification that triggered
	// the run (notify-components), so the server can record it done.
	Notification string      `json:"notification,omitempty"`
	Started      time.Time   `json:"started"`
	Finished     time.Time   `json:"finished"`
	Result       Result      `json:"result"`
	Plan         plan.Plan   `json:"plan"`
	Categories   []*Category `json:"categories"`
}

// Category is the outcome of one category of a run.
type Category struct {
	Category category.Category `json:"category"`
	Result   Result            `json:"result"`
	// Source is the source that updated the category ("" if it failed).
	Source string `json:"source,omitempty"`
	// URL is the URL of Source that served, when Source has several (the
	// server of a site with several management servers).
	URL string `json:"url,omitempty"`
	// Before and After map each item name to its installed version.
	Before map[string]string `json:"before,omitempty"`
	After  map[string]string `json:"after,omitempty"`
	// Bytes are the bytes downloaded, deltas included.
	Bytes int64 `json:"bytes"`
	// FullBytes are the bytes the files downloaded would have taken in
	// full, without deltas (0 in reports of older endpoints).
	FullBytes int64 `json:"full_bytes,omitempty"`
	// Deltas is how many files were rebuilt from a delta.
	Deltas   int           `json:"deltas,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// Attempts are the sources tried before the chosen one, in plan order,
	// each with why it was unable to update.
	Attempts []Attempt `json:"attempts,omitempty"`
	// Error summarises why the category failed.
	Error string `json:"error,omitempty"`
	// Hook is the outcome of the post-install hook, if one ran.
	Hook *Hook `json:"hook,omitempty"`
}

// Attempt is one source that was unable to update a category.
type Attempt struct {
	Source string `json:"source"`
	// URL is the URL of Source that was unable to update, when Source
	// has several: each is an attempt of its own.
	URL   string        `json:"url,omitempty"`
	Class failure.Class `json:"class"`
	Error string        `json:"error"`
	// Cached is set when the source was not contacted because it failed at
	// connection level earlier in the run or shortly before.
	Cached bool `json:"cached,omitempty"`
	// Delta, when set, is the target path of a delta that failed to
	// download, apply or verify: the full file was tried next from the
	// same source, so this is not a source that was unable to update.
	Delta string `json:"delta,omitempty"`
}

// Hook is the outcome of a post-install hook command.
type Hook struct {
	Command  []string      `json:"command"`
	ExitCode int           `json:"exit_code"`
	Error    string        `json:"error,omitempty"`
	Output   string        `json:"output,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Finish sets the overall result from the categories' results.
func (r *Report) Finish(at time.Time) {
	r.Finished = at
	r.Result = UpToDate
	for _, c := range r.Categories {
		switch {
		case c.Result == Failed:
			r.Result = Failed
		case c.Result == Updated && r.Result != Failed:
			r.Result = Updated
		}
	}
}

// Log writes the report to l: one line per category, and one per failed
// attempt at debug level.
func (r *Report) Log(l *slog.Logger) {
	for _, c := range r.Categories {
		lvl := slog.LevelInfo
		if c.Result == Failed {
			lvl = slog.LevelWarn
		}
		l.Log(context.Background(), lvl, "update category", "run", r.ID, "trigger", r.Trigger, "category", c.Category,
			"result", c.Result, "source", strings.TrimSpace(c.Source+" "+c.URL), "bytes", c.Bytes, "duration", c.Duration,
			"failed_sources", len(c.Attempts), "error", c.Error)
		for _, a := range c.Attempts {
			l.Debug("source unable to update", "run", r.ID, "category", c.Category, "source", strings.TrimSpace(a.Source+" "+a.URL),
				"class", a.Class, "cached", a.Cached, "error", a.Error)
		}
	}
	l.Info("update run", "run", r.ID, "trigger", r.Trigger, "result", r.Result, "duration", r.Finished.Sub(r.Started))
}

// Category returns the outcome of category c, or nil if the run did not
// update it.
func (r *Report) Category(c category.Category) *Category {
	for _, rc := range r.Categories {
		if rc.Category == c {
			return rc
		}
	}
	return nil
}
