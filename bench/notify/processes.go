package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
)

// processesResult is what driveProcesses prints and writes with -json:
// the same endpoints notified through one hub process (the baseline)
// and through several sharing the PostgreSQL database.
type processesResult struct {
	CPUs      int `json:"cpus"`
	Endpoints int `json:"endpoints"`
	Agents    int `json:"agents"`
	Processes int `json:"processes"`
	Rounds    int `json:"rounds"`
	// Medians over the rounds, in milliseconds.
	NotifyAllMS    float64 `json:"notify_all_ms"`
	AgentsLastMS   float64 `json:"agents_last_ms"`
	ClientsFirstMS float64 `json:"clients_first_ms"`
	// One process: the baseline.
	OneNotifyAllMS    float64 `json:"one_process_notify_all_ms"`
	OneAgentsLastMS   float64 `json:"one_process_agents_last_ms"`
	OneClientsFirstMS float64 `json:"one_process_clients_first_ms"`
	TimeRatio         float64 `json:"time_ratio"`
	// Resident memory of every server process, idle and with every stream
	// open, and per stream.
	RSSIdleMiB      float64 `json:"rss_idle_mib"`
	RSSStreamsMiB   float64 `json:"rss_streams_mib"`
	KiBPerStream    float64 `json:"kib_per_stream"`
	OneRSSIdleMiB   float64 `json:"one_process_rss_idle_mib"`
	OneRSSStreamMiB float64 `json:"one_process_rss_streams_mib"`
	OneKiBPerStream float64 `json:"one_process_kib_per_stream"`
}

// driveProcesses sets up the endpoints in a new PostgreSQL schema, then
// measures them against one hub process and against o.Processes.
func driveProcesses(o options) error {
	if o.Database == "" {
		return errors.New("-processes needs a PostgreSQL database (-database)")
	}
	ctx := context.Background()
	dsn, cleanup, err := database(ctx, o.Database)
	if err != nil {
		return err
	}
	defer cleanup()
	st, _, _, _, err := setupStore(ctx, dsn, o)
	if err != nil {
		return fmt.Errorf("set up the endpoints: %w", err)
	}
	st.Close()
	one, err := measureServers(o, false, dsn, 1)
	if err != nil {
		return fmt.Errorf("one process: %w", err)
	}
	fmt.Println()
	several, err := measureServers(o, false, dsn, o.Processes)
	if err != nil {
		return fmt.Errorf("%d processes: %w", o.Processes, err)
	}
	res := summarizeProcesses(o, one, several)
	res.print()
	if o.JSON != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		return os.WriteFile(o.JSON, append(b, '\n'), 0o644)
	}
	return nil
}

func summarizeProcesses(o options, one, several *figures) *processesResult {
	base := summarize(o, several, one) // the same fields, one process as the baseline
	r := &processesResult{CPUs: runtime.NumCPU(), Endpoints: o.Endpoints, Agents: o.Agents, Processes: o.Processes,
		Rounds: o.Rounds, NotifyAllMS: base.NotifyAllMS, AgentsLastMS: base.AgentsLastMS, ClientsFirstMS: base.ClientsFirstMS,
		OneNotifyAllMS: base.BaselineNotifyAllMS, TimeRatio: base.TimeRatio,
		RSSIdleMiB: base.RSSIdleMiB, RSSStreamsMiB: base.RSSStreamsMiB, KiBPerStream: base.KiBPerStream,
		OneRSSIdleMiB: base.BaselineRSSIdleMiB, OneRSSStreamMiB: base.BaselineRSSStreams, OneKiBPerStream: base.BaselineKiBPerStrm}
	ms := func(f *figures) (float64, float64) {
		return msOf(medianDur(f.AgentsLast)), msOf(medianDur(f.ClientsFirst))
	}
	r.OneAgentsLastMS, r.OneClientsFirstMS = ms(one)
	return r
}

func (r *processesResult) print() {
	fmt.Printf("\n%d endpoints (%d update agents), PostgreSQL, %d CPUs, median of %d rounds\n\n",
		r.Endpoints, r.Agents, r.CPUs, r.Rounds)
	fmt.Printf("%-44s %14s %14s %8s\n", "", fmt.Sprintf("%d processes", r.Processes), "1 process", "ratio")
	fmt.Printf("%-44s %11.0f ms %11.0f ms %7.2fx\n", "every endpoint notified", r.NotifyAllMS, r.OneNotifyAllMS, r.TimeRatio)
	fmt.Printf("%-44s %11.0f ms %11.0f ms\n", "  of which: last agent notified", r.AgentsLastMS, r.OneAgentsLastMS)
	fmt.Printf("%-44s %11.0f ms %11.0f ms\n", "  first client (agents reported done)", r.ClientsFirstMS, r.OneClientsFirstMS)
	fmt.Printf("%-44s %10.1f MiB %10.1f MiB\n", "server RSS idle (all processes)", r.RSSIdleMiB, r.OneRSSIdleMiB)
	fmt.Printf("%-44s %10.1f MiB %10.1f MiB\n", fmt.Sprintf("server RSS with %d streams", r.Endpoints), r.RSSStreamsMiB, r.OneRSSStreamMiB)
	fmt.Printf("%-44s %10.1f KiB %10.1f KiB\n", "  per stream", r.KiBPerStream, r.OneKiBPerStream)
}
