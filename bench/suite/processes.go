package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cascade-update/cascade/bench/internal/rlimit"
)

// processesFigures are bench/notify -processes' -json output.
type processesFigures struct {
	Endpoints         int     `json:"endpoints"`
	Agents            int     `json:"agents"`
	Processes         int     `json:"processes"`
	Rounds            int     `json:"rounds"`
	NotifyAllMS       float64 `json:"notify_all_ms"`
	AgentsLastMS      float64 `json:"agents_last_ms"`
	ClientsFirstMS    float64 `json:"clients_first_ms"`
	OneNotifyAllMS    float64 `json:"one_process_notify_all_ms"`
	OneAgentsLastMS   float64 `json:"one_process_agents_last_ms"`
	OneClientsFirstMS float64 `json:"one_process_clients_first_ms"`
	RSSStreamsMiB     float64 `json:"rss_streams_mib"`
	KiBPerStream      float64 `json:"kib_per_stream"`
	OneRSSStreamMiB   float64 `json:"one_process_rss_streams_mib"`
	OneKiBPerStream   float64 `json:"one_process_kib_per_stream"`
}

// processesTarget is the endpoint count of issue 18's benchmark.
const processesTarget = 100000

// streamsPerConn is how many event streams share an HTTP/2 connection
// when the open-file limit forbids a connection per endpoint.
const streamsPerConn = 250

// processesEndpoints is how many endpoints the benchmark can hold: the
// driver holds one end of every stream in one process, so the hard
// open-file limit, which needs privileges to raise, bounds it.
func processesEndpoints() (int, uint64) {
	limit, err := rlimit.MaxFiles()
	if err != nil || limit < 4000 {
		return 1000, limit
	}
	n := min(processesTarget, int(limit-2000)/1000*1000)
	return n, limit
}

// measureNotifyProcesses measures bench/notify -processes 2: the
// endpoints split across two hub processes on one PostgreSQL database,
// against the same endpoints on one process.
func measureNotifyProcesses(ctx context.Context, s *suite) (string, error) {
	dsn := postgresDSN(ctx, s)
	if dsn == "" {
		return "", errors.New("no PostgreSQL (CASCADE_TEST_POSTGRES, scripts/postgres-test-setup)")
	}
	n, limit := processesEndpoints()
	agents := processesTarget / 200 // 500 of 100,000
	args := []string{"-processes", "2", "-endpoints", strconv.Itoa(n), "-agents", strconv.Itoa(agents), "-rounds", "3"}
	shared := n < processesTarget // the limit forbids a connection per stream: HTTP/2 streams share them
	if shared {
		args = []string{"-processes", "2", "-endpoints", strconv.Itoa(processesTarget), "-agents", strconv.Itoa(agents),
			"-rounds", "3", "-streams-per-conn", strconv.Itoa(streamsPerConn), "-connect-rate", "3000"}
	}
	if s.quick {
		args = []string{"-processes", "2", "-endpoints", "1000", "-agents", "50", "-rounds", "1"}
	}
	var f processesFigures
	cmd, err := runJSON(ctx, s, "notify", &f, append(args, "-database", dsn)...)
	if err != nil {
		return "", err
	}
	cmd = strings.Replace(cmd, dsn, `"$CASCADE_TEST_POSTGRES"`, 1)
	scale := ""
	if shared {
		scale = fmt.Sprintf(" over HTTPS with HTTP/2: the hard open-file limit of this machine is %d per process and "+
			"raising it needs privileges, so instead of a TCP connection per endpoint the streams share HTTP/2 connections, "+
			"up to %d on each (the benchmark server's MaxConcurrentStreams; net/http's default, which the management server "+
			"keeps, is 250), about %d connections in all; the memory per stream below is then per HTTP/2 stream, not per "+
			"TLS connection as a real endpoint, which has its own connection, costs; the endpoints connect at 3000 a second, "+
			"so that each new stream's first read of the store finishes within the hub's store timeout", limit, streamsPerConn,
			processesTarget/streamsPerConn)
	} else if f.Endpoints < processesTarget {
		scale = fmt.Sprintf(" (%d endpoints, not the issue's %d: the hard open-file limit of this machine is %d "+
			"per process, and raising it needs privileges; the benchmark's driver holds one end of every stream)",
			f.Endpoints, processesTarget, limit)
	}
	ms := func(v float64) string { return fmt.Sprintf("%.0f ms", v) }
	return fmt.Sprintf("%d endpoints hold real Server-Sent Events streams (`listen.Run`)%s, %d of them update agents "+
		"that report done to the process they are connected to as soon as they are notified. First all of them on one hub "+
		"process (the baseline), then the same endpoints split across %d hub processes sharing the PostgreSQL database, same run; "+
		"each notification is made on the first process, the others learn of it (and of the release) through the store's "+
		"signals (LISTEN/NOTIFY). Time from Notify until every endpoint received the notification, median of %d rounds.\n\n",
		f.Endpoints, scale, f.Agents, f.Processes, f.Rounds) + code(cmd) + "\n" +
		table([]string{"", fmt.Sprintf("%d processes", f.Processes), "1 process (baseline)", "ratio"},
			[]string{"every endpoint notified", ms(f.NotifyAllMS), ms(f.OneNotifyAllMS), ratio(f.NotifyAllMS, f.OneNotifyAllMS)},
			[]string{"last agent notified", ms(f.AgentsLastMS), ms(f.OneAgentsLastMS), ratio(f.AgentsLastMS, f.OneAgentsLastMS)},
			[]string{"first client notified (agents reported)", ms(f.ClientsFirstMS), ms(f.OneClientsFirstMS), ratio(f.ClientsFirstMS, f.OneClientsFirstMS)},
			[]string{"server RSS with every stream open (all processes)", fmt.Sprintf("%.1f MiB", f.RSSStreamsMiB),
				fmt.Sprintf("%.1f MiB", f.OneRSSStreamMiB), ratio(f.RSSStreamsMiB, f.OneRSSStreamMiB)},
			[]string{"per stream", fmt.Sprintf("%.1f KiB", f.KiBPerStream), fmt.Sprintf("%.1f KiB", f.OneKiBPerStream),
				ratio(f.KiBPerStream, f.OneKiBPerStream)}), nil
}
