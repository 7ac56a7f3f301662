package main

import (
	"context"
	"fmt"
	"strings"
)

// sections are BENCHMARKS.md's sections, in order.
func sections() []section {
	return []section{
		{name: "plan", title: "Planning a 1024-entry list (issue 2)", measure: measurePlan},
		{name: "failover", title: "Ordered failover through 1023 dead sources (issues 4, 7)", measure: measureFailover},
		{name: "uptodate", title: "Up-to-date check traffic (issue 4)", measure: measureUpToDate},
		{name: "stream", title: "Streaming a target to disk (issue 3)", measure: measureStream},
		{name: "hashbins", title: "Metadata with 100,000 targets in hash bins (issue 3)", measure: measureHashBins},
		{name: "refresh", title: "Refreshing a mirror of 1024 hash bins after a publish (issue 5)", measure: measureRefresh},
		{name: "agent", title: "Update agent against nginx (issues 5, 7)", measure: measureAgent},
		{name: "fanout", title: "Fan-out: 10,000 endpoints behind 50 update agents (issue 7)", measure: measureFanout},
		{name: "notify", title: "Notifying 10,000 connected endpoints (issue 6)", measure: measureNotify},
		{name: "notify-processes", title: "Notifying endpoints across two server processes (issue 18)", measure: measureNotifyProcesses},
		{name: "takeover", title: "Writer takeover across two server processes (issue 18)", measure: measureTakeover},
		{name: "ingest", title: "Report ingestion (issue 6)", measure: measureIngest},
		{name: "ingest-processes", title: "Report ingestion across two server processes (issue 18)", measure: measureReportsProcesses},
		{name: "delta", title: "Deltas (issue 16)", measure: measureDelta},
		{name: "fanoutdelta", title: "Fan-out with deltas: 50 update agents, a new version differing by 0.5% (issue 16)", measure: measureFanoutDelta},
		{name: "whatif", title: "What-if over 100,000 endpoints (issue 15)", measure: measureWhatIf},
		{name: "console", title: "Console pages with 100,000 endpoints (issue 15)", measure: measureConsole},
	}
}

// benchtime is full, or quick with -quick.
func (s *suite) benchtime(full, quick string) string {
	if s.quick {
		return quick
	}
	return full
}

// table renders a markdown table.
func table(head []string, rows ...[]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for range head {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

// code is a shell command block.
func code(cmd string) string { return "```\n" + cmd + "\n```\n" }

// dur formats nanoseconds.
func dur(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// ratio formats a/b.
func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	r := a / b
	switch {
	case r < 0.01:
		return fmt.Sprintf("%.4f", r)
	case r < 10:
		return fmt.Sprintf("%.2f", r)
	}
	return fmt.Sprintf("%.0f", r)
}

// bytesSI formats a byte count.
func bytesSI(n float64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f KB", n/1e3)
	}
	return fmt.Sprintf("%.0f B", n)
}

// metrics reads several metrics, stopping at the first missing one.
func metrics(r benchResults, want ...[2]string) ([]float64, error) {
	out := make([]float64, len(want))
	for i, w := range want {
		v, err := r.metric(w[0], w[1])
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func measurePlan(ctx context.Context, s *suite) (string, error) {
	r, cmd, err := goBench(ctx, s, "./internal/plan/", "Parse1024|For1024", s.benchtime("2s", "100ms"))
	if err != nil {
		return "", err
	}
	m, err := metrics(r, [2]string{"BenchmarkParse1024", "ns/op"}, [2]string{"BenchmarkParse1024", "allocs/op"},
		[2]string{"BenchmarkFor1024", "ns/op"}, [2]string{"BenchmarkFor1024", "allocs/op"})
	if err != nil {
		return "", err
	}
	return "Computing a plan (`plan.For`) for a full 1024-entry list and an endpoint with 4 addresses, as every update run does, " +
		"against parsing and validating the same policy (done once per policy change), same run:\n\n" + code(cmd) + "\n" +
		table([]string{"benchmark", "time/op", "allocs/op", "ratio"},
			[]string{"parse + validate (baseline)", dur(m[0]), fmt.Sprintf("%.0f", m[1]), "1.00"},
			[]string{"`plan.For`", dur(m[2]), fmt.Sprintf("%.0f", m[3]), ratio(m[2], m[0])}), nil
}

func measureFailover(ctx context.Context, s *suite) (string, error) {
	r, cmd, err := goBench(ctx, s, "./internal/update", "PickLast", s.benchtime("3x", "1x"))
	if err != nil {
		return "", err
	}
	var rows [][]string
	for _, k := range []struct{ kind, label string }{{"refused", "refuse connections"}, {"hanging", "accept, never answer"}, {"notfound", "answer 404"}} {
		ord, err := r.metric("BenchmarkPickLast/"+k.kind+"/ordered", "ns/op")
		if err != nil {
			return "", err
		}
		seq, err := r.metric("BenchmarkPickLast/"+k.kind+"/sequential", "ns/op")
		if err != nil {
			return "", err
		}
		seqLabel := dur(seq)
		if scaled, err := r.metric("BenchmarkPickLast/"+k.kind+"/sequential", "seq-s/1023"); err == nil {
			seq, seqLabel = scaled*1e9, dur(scaled*1e9)+" (16 measured, scaled)"
		}
		rows = append(rows, []string{k.label, dur(ord), seqLabel, ratio(ord, seq)})
	}
	return "Time for an endpoint to update from entry 1024 when the 1023 entries before it fail, all real HTTP sources " +
		"on loopback addresses; each iteration is a full update run of a fresh endpoint (plan, probes, verification, download, " +
		"install). Baseline: a sequential walk with the same 1 s connect and response timeouts. Target (issue 4): under 2 s " +
		"for hanging sources. The chosen source always equals the sequential walk's (`TestWalkEqualsSequential`).\n\n" +
		code(cmd) + "\n" + table([]string{"the 1023 sources before the live one", "cascade (ordered probe-ahead)", "sequential walk (baseline)", "ratio"}, rows...), nil
}

func measureUpToDate(ctx context.Context, s *suite) (string, error) {
	r, cmd, err := goBench(ctx, s, "./internal/update", "UpToDate", s.benchtime("20x", "3x"))
	if err != nil {
		return "", err
	}
	m, err := metrics(r, [2]string{"BenchmarkUpToDateCheckGoTUF", "requests/run"}, [2]string{"BenchmarkUpToDateCheckGoTUF", "body-bytes/run"},
		[2]string{"BenchmarkUpToDateCheck", "requests/run"}, [2]string{"BenchmarkUpToDateCheck", "body-bytes/run"})
	if err != nil {
		return "", err
	}
	return "What an endpoint that is already up to date costs its source per run, against go-tuf's reference updater with " +
		"warm caches; same repository, same server, same run. cascade's two requests (the root-rotation probe, a 404, and a " +
		"conditional GET of `timestamp.json` answered 304) go out in parallel: one round trip.\n\n" + code(cmd) + "\n" +
		table([]string{"client", "requests per run", "response body bytes per run", "bytes ratio"},
			[]string{"go-tuf updater (baseline)", fmt.Sprintf("%.0f", m[0]), fmt.Sprintf("%.0f", m[1]), "1.00"},
			[]string{"cascade", fmt.Sprintf("%.0f", m[2]), fmt.Sprintf("%.0f", m[3]), ratio(m[3], m[1])}), nil
}

func measureStream(ctx context.Context, s *suite) (string, error) {
	r, cmd, err := goBench(ctx, s, "./internal/fetch/", "BenchmarkFile", s.benchtime("3x", "1x"))
	if err != nil {
		return "", err
	}
	var rows [][]string
	for _, size := range []string{"16MiB", "256MiB"} {
		m, err := metrics(r, [2]string{"BenchmarkFile/" + size + "/cascade", "MB/s"}, [2]string{"BenchmarkFile/" + size + "/plain-copy", "MB/s"},
			[2]string{"BenchmarkFile/" + size + "/cascade", "peak-heap-growth-MiB"})
		if err != nil {
			return "", err
		}
		rows = append(rows, []string{size, fmt.Sprintf("%.0f MB/s", m[0]), fmt.Sprintf("%.0f MB/s", m[1]), ratio(m[0], m[1]), fmt.Sprintf("%.1f MiB", m[2])})
	}
	return "`fetch.File` (hashing, exact length, rate watchdog, fsync, rename) against a plain `http.Get` + `io.Copy` + fsync " +
		"of the same file from the same local server, same run. Memory must stay flat in the target size.\n\n" + code(cmd) + "\n" +
		table([]string{"target", "cascade", "plain copy (baseline)", "ratio", "cascade peak heap growth"}, rows...), nil
}

func measureHashBins(ctx context.Context, s *suite) (string, error) {
	r, cmd, err := goBench(ctx, s, "./internal/repo/", "BenchmarkHashBins", s.benchtime("20x", "2x"))
	if err != nil {
		return "", err
	}
	base, err := r.metric("BenchmarkHashBins/bins=256/RefreshLookup/cold", "B-fetched/op")
	if err != nil {
		return "", err
	}
	var rows [][]string
	for _, bins := range []string{"256", "1024", "4096"} {
		p := "BenchmarkHashBins/bins=" + bins + "/"
		m, err := metrics(r, [2]string{p + "RefreshLookup/cold", "metadata-B"}, [2]string{p + "RefreshLookup/cold", "ns/op"},
			[2]string{p + "RefreshLookup/cold", "B-fetched/op"}, [2]string{p + "RefreshLookup/warm", "ns/op"},
			[2]string{p + "RefreshLookup/warm", "B-fetched/op"}, [2]string{p + "Publish", "ns/op"})
		if err != nil {
			return "", err
		}
		label := bins
		if bins == "1024" {
			label = "**1024** (default)"
		}
		rows = append(rows, []string{label, bytesSI(m[0]), fmt.Sprintf("%s (%s)", dur(m[1]), bytesSI(m[2])),
			fmt.Sprintf("%s (%s)", dur(m[3]), bytesSI(m[4])), dur(m[5]), ratio(m[2], base)})
	}
	return "A vendor repository of 100,000 targets (1,000 items x 10 files x 10 versions). Refresh + lookup of one random " +
		"target with go-tuf's updater, cold (empty cache) and warm; publishing one item into it. Baseline: 256 bins, same run.\n\n" +
		code(cmd) + "\n" + table([]string{"bins", "all metadata", "cold refresh+lookup (fetched)", "warm refresh+lookup (fetched)", "publish one item", "cold bytes ratio"}, rows...), nil
}

func measureRefresh(ctx context.Context, s *suite) (string, error) {
	r, cmd, err := goBench(ctx, s, "./internal/mirror", "BenchmarkRefresh", s.benchtime("10x", "2x"))
	if err != nil {
		return "", err
	}
	m, err := metrics(r, [2]string{"BenchmarkRefresh/changed", "ns/op"}, [2]string{"BenchmarkRefresh/uptodate", "ns/op"})
	if err != nil {
		return "", err
	}
	return "What an update agent (or the server) does after each publish: bring its verified copy of a repository with " +
		"1024 hash bins and 200 items up to date with one new item version (one bin, the index and the top-level " +
		"metadata change), `mirror.Copy` with pruning over HTTP on loopback. Baseline: the same copy when nothing changed, " +
		"same run. The trusted state keeps delegated roles in a content-addressed pool, so a commit writes the roles " +
		"that changed rather than all 1024 (before: 1.45 s per refresh, 0.75 s when up to date, on this machine).\n\n" +
		code(cmd) + "\n" + table([]string{"copy", "time/op", "ratio"},
		[]string{"nothing changed (baseline)", dur(m[1]), "1.00"},
		[]string{"one new item version", dur(m[0]), ratio(m[0], m[1])}), nil
}
