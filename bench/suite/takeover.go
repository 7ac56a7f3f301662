package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// takeoverFigures are bench/takeover's -json output.
type takeoverFigures struct {
	Load    string `json:"load"`
	Results []struct {
		WriterPoll   string    `json:"writer_poll"`
		Rounds       int       `json:"rounds"`
		MedianMS     float64   `json:"median_ms"`
		MinMS        float64   `json:"min_ms"`
		MaxMS        float64   `json:"max_ms"`
		SignMedianMS float64   `json:"sign_median_ms"`
		SignMS       []float64 `json:"sign_ms"`
	} `json:"results"`
}

// takeoverTarget is issue 18's bound on a takeover, in milliseconds.
const takeoverTarget = 15000

// measureTakeover measures bench/takeover: the writer SIGKILLed, until
// the other process signs the next site version.
func measureTakeover(ctx context.Context, s *suite) (string, error) {
	dsn := postgresDSN(ctx, s)
	if dsn == "" {
		return "", errors.New("no PostgreSQL (CASCADE_TEST_POSTGRES, scripts/postgres-test-setup)")
	}
	args := []string{"-rounds", "10", "-polls", "2s,500ms"}
	if s.quick {
		args = []string{"-rounds", "2", "-polls", "500ms"}
	}
	var f takeoverFigures
	cmd, err := runJSON(ctx, s, "takeover", &f, append(args, "-database", dsn)...)
	if err != nil {
		return "", err
	}
	cmd = strings.Replace(cmd, dsn, `"$CASCADE_TEST_POSTGRES"`, 1)
	ms := func(v float64) string { return fmt.Sprintf("%.0f ms", v) }
	var rows [][]string
	for _, r := range f.Results {
		met := "met"
		if r.MaxMS > takeoverTarget {
			met = "**missed**"
		}
		rows = append(rows, []string{"`writer_poll` " + r.WriterPoll, ms(r.MedianMS), ms(r.MinMS) + " – " + ms(r.MaxMS),
			ms(r.SignMedianMS), ratio(r.MedianMS, r.SignMedianMS), "≤ 15 s: " + met})
	}
	return fmt.Sprintf("Two real `cascade server run` processes on one PostgreSQL database (the second made by `cascade server join`), "+
		"each with its own data directory. The writer is SIGKILLed; the time runs from the kill until the database holds the "+
		"next site version (`site_versions`, read every 5 ms), signed by the other process, which took the advisory lock at "+
		"its next `writer_poll` and re-signed the timestamp. The kill comes a random time (uniform, up to one `writer_poll`) "+
		"after the other process is ready, so at a random point of its poll for the lock, as a crash would. The killed process is then started again (it follows) and the "+
		"next round kills the new writer: %d rounds for each `writer_poll` (2 s is the default). The baseline, same run and "+
		"same processes: an admin change (a component hold or release) sent to the writer, until the database holds the "+
		"version signed for it, when nothing fails (median of as many). Load average when the run ended: %s (other "+
		"benchmarks share the machine's cores).\n\n", f.Results[0].Rounds, f.Load) + code(cmd) + "\n" +
		table([]string{"", "takeover, median", "min – max", "baseline: signing a change, median", "ratio", "target"}, rows...) +
		"\nA takeover is at most one `writer_poll` (the follower's next try for the lock; PostgreSQL releases it as soon as the " +
		"killed process's connection closes) plus what the new writer does before its first version: open the sealed keys, " +
		"bring its copy to the newest version and sign.\n", nil
}
