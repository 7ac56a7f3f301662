package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// reportsPhase is one phase of bench/reports' -json output.
type reportsPhase struct {
	Processes int     `json:"processes"`
	Failed    int     `json:"failed"`
	SpanS     float64 `json:"span_s"`
	PerSecond float64 `json:"reports_per_s"`
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
	MaxMS     float64 `json:"max_ms"`
	SendP99MS float64 `json:"send_p99_ms"`
	Load      string  `json:"load"`
}

// reportsFigures are bench/reports' -json output.
type reportsFigures struct {
	Endpoints int          `json:"endpoints"`
	WindowS   float64      `json:"window_s"`
	Conns     int          `json:"conns"`
	EnrollS   float64      `json:"enroll_s"`
	One       reportsPhase `json:"one_process"`
	Two       reportsPhase `json:"two_processes"`
}

// measureReportsProcesses measures bench/reports: issue 18's 100,000
// endpoints reporting within a minute, across two server processes and
// on one.
func measureReportsProcesses(ctx context.Context, s *suite) (string, error) {
	dsn := postgresDSN(ctx, s)
	if dsn == "" {
		return "", errors.New("no PostgreSQL (CASCADE_TEST_POSTGRES, scripts/postgres-test-setup)")
	}
	args := []string{"-endpoints", "100000", "-window", "1m", "-conns", "128"}
	if s.quick {
		args = []string{"-endpoints", "3000", "-window", "5s", "-conns", "32"}
	}
	var f reportsFigures
	cmd, err := runJSON(ctx, s, "reports", &f, append(args, "-database", dsn)...)
	if err != nil {
		return "", err
	}
	cmd = strings.Replace(cmd, dsn, `"$CASCADE_TEST_POSTGRES"`, 1)
	ms := func(v float64) string { return fmt.Sprintf("%.0f ms", v) }
	offered := float64(f.Endpoints) / f.WindowS
	return fmt.Sprintf("%d endpoints (enrolled straight into the store in %.1f s) each upload one update report, the uploads "+
		"spread evenly over %.0f s (%.0f per second offered), through the API of real `cascade server run` processes "+
		"(HTTPS, endpoint authentication, JSON decoding, batched writes) on one PostgreSQL database. First every upload "+
		"to one process (the baseline), then the same endpoints split across two (the second made by `cascade server join`), "+
		"same run. The driver is one process under this machine's hard limit of 20,000 open files, so the endpoints share "+
		"%d kept-alive connections in all (split evenly across the processes, so both phases have as many uploads in "+
		"flight) instead of one each; it runs on the same 2 cores as the servers and "+
		"PostgreSQL. Reports per second: the reports accepted over the time from the first scheduled upload until the "+
		"last answer (every accepted report is checked to be stored). Latency from an upload's scheduled time (waiting for "+
		"a connection counts) and, p99, from sending it. Load average after each phase: %s (one process), %s (two).\n\n",
		f.Endpoints, f.EnrollS, f.WindowS, offered, f.Conns, f.One.Load, f.Two.Load) + code(cmd) + "\n" +
		table([]string{"", "2 processes", "1 process (baseline)", "ratio"},
			[]string{"reports per second", fmt.Sprintf("%.0f", f.Two.PerSecond), fmt.Sprintf("%.0f", f.One.PerSecond), ratio(f.Two.PerSecond, f.One.PerSecond)},
			[]string{"time until the last answer", fmt.Sprintf("%.1f s", f.Two.SpanS), fmt.Sprintf("%.1f s", f.One.SpanS), ratio(f.Two.SpanS, f.One.SpanS)},
			[]string{"p99 latency (from the scheduled time)", ms(f.Two.P99MS), ms(f.One.P99MS), ratio(f.Two.P99MS, f.One.P99MS)},
			[]string{"p50 latency (from the scheduled time)", ms(f.Two.P50MS), ms(f.One.P50MS), ratio(f.Two.P50MS, f.One.P50MS)},
			[]string{"slowest upload", ms(f.Two.MaxMS), ms(f.One.MaxMS), ratio(f.Two.MaxMS, f.One.MaxMS)},
			[]string{"p99 latency (from sending)", ms(f.Two.SendP99MS), ms(f.One.SendP99MS), ratio(f.Two.SendP99MS, f.One.SendP99MS)},
			[]string{"failed uploads", fmt.Sprint(f.Two.Failed), fmt.Sprint(f.One.Failed), ""}), nil
}
