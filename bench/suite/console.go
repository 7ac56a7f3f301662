package main

import (
	"context"
	"fmt"
	"strings"
)

// consoleFigures are bench/console's -json output.
type consoleFigures struct {
	Endpoints int `json:"endpoints"`
	Reports   int `json:"reports"`
	Requests  int `json:"requests"`
	Databases []struct {
		Database string  `json:"database"`
		LoadS    float64 `json:"load_s"`
		Pages    []struct {
			Name        string  `json:"name"`
			Path        string  `json:"path"`
			Baseline    string  `json:"baseline"`
			Samples     int     `json:"samples"`
			P50MS       float64 `json:"p50_ms"`
			P99MS       float64 `json:"p99_ms"`
			Bytes       int     `json:"bytes"`
			BaseSamples int     `json:"baseline_samples"`
			BaseP50MS   float64 `json:"baseline_p50_ms"`
			BaseP99MS   float64 `json:"baseline_p99_ms"`
			Error       string  `json:"error"`
		} `json:"pages"`
	} `json:"databases"`
	PostgresNote string `json:"postgres_note"`
}

// measureConsole times the console's pages with 100,000 endpoints
// against the bare SQL they need (bench/console).
func measureConsole(ctx context.Context, s *suite) (string, error) {
	postgresDSN(ctx, s) // bench/console reads CASCADE_TEST_POSTGRES
	args := []string{"-requests", "200", "-budget", "20s"}
	if s.quick {
		args = []string{"-endpoints", "5000", "-requests", "20", "-budget", "3s"}
	}
	var f consoleFigures
	cmd, err := runJSON(ctx, s, "console", &f, args...)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Server time of the web console's pages with %d endpoints (100 of them update agents, each named by a "+
		"policy entry) and %d last reports: the real handler of `cascade server run` with a signed-in session, in "+
		"process, from the request to the last byte of the answer (session check, queries, the registry view, "+
		"rendering), requests one after another. Baseline: the bare SQL the page needs (its statements run directly on "+
		"the same database, every row read), same run. The dashboard and the filters by state and by agent need every "+
		"endpoint classified (versions compared as `internal/version` does, the policy evaluated for each): their bare "+
		"SQL is the one statement reading every endpoint with its last report, and the page reuses the classification "+
		"(the registry view, recomputed in the background after 30 s and at once after a change), which also orders, "+
		"counts and pages them: SQL reads only the page's rows by id. The text search reads the trigram index of "+
		"migration 0016 (docs/console.md, \"Large registries\"). Target (issue 15): "+
		"p99 ≤ 100 ms. PostgreSQL is the database of `CASCADE_TEST_POSTGRES`.\n\n%s\n", f.Endpoints, f.Reports, code(cmd))
	for _, d := range f.Databases {
		fmt.Fprintf(&b, "**%s** (registry loaded through the store's bulk paths in %.0f s):\n\n", d.Database, d.LoadS)
		var rows [][]string
		for _, p := range d.Pages {
			if p.Error != "" {
				rows = append(rows, []string{p.Name, "failed: " + p.Error, "", "", "", "", "", ""})
				continue
			}
			met := "met"
			if p.P99MS > 100 {
				met = "**missed**"
			}
			rows = append(rows, []string{fmt.Sprintf("%s (`%s`)", p.Name, p.Path),
				fmt.Sprintf("%.1f / %.1f ms", p.P50MS, p.P99MS),
				fmt.Sprintf("%.1f / %.1f ms", p.BaseP50MS, p.BaseP99MS),
				ratio(p.P50MS, p.BaseP50MS), ratio(p.P99MS, p.BaseP99MS), met,
				fmt.Sprintf("%.1f KB", float64(p.Bytes)/1000), p.Baseline})
		}
		b.WriteString(table([]string{"page", "server p50 / p99", "bare SQL p50 / p99 (baseline)", "ratio p50", "ratio p99",
			"p99 ≤ 100 ms", "page size", "baseline statements"}, rows...))
		b.WriteString("\n")
	}
	if f.PostgresNote != "" {
		fmt.Fprintf(&b, "PostgreSQL %s.\n", f.PostgresNote)
	}
	return b.String(), nil
}
