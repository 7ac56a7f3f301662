package main

import (
	"fmt"
	"runtime"
	"slices"
	"time"
)

// result is the comparison drive prints and writes with -json.
type result struct {
	CPUs      int    `json:"cpus"`
	Endpoints int    `json:"endpoints"`
	Agents    int    `json:"agents"`
	Database  string `json:"database"`
	TLS       bool   `json:"tls"`
	Rounds    int    `json:"rounds"`
	// Medians over the rounds, in milliseconds: every endpoint notified,
	// the last agent notified, the first client notified (after the
	// agents reported done).
	NotifyAllMS    float64 `json:"notify_all_ms"`
	AgentsLastMS   float64 `json:"agents_last_ms"`
	ClientsFirstMS float64 `json:"clients_first_ms"`
	// The same endpoints notified by the bare broadcaster (no store, no
	// agents first): the baseline.
	BaselineNotifyAllMS float64 `json:"baseline_notify_all_ms"`
	TimeRatio           float64 `json:"time_ratio"`
	// Server process resident memory, idle and with every stream open.
	RSSIdleMiB          float64 `json:"rss_idle_mib"`
	RSSStreamsMiB       float64 `json:"rss_streams_mib"`
	KiBPerStream        float64 `json:"kib_per_stream"`
	BaselineRSSIdleMiB  float64 `json:"baseline_rss_idle_mib"`
	BaselineRSSStreams  float64 `json:"baseline_rss_streams_mib"`
	BaselineKiBPerStrm  float64 `json:"baseline_kib_per_stream"`
	RSSRatio            float64 `json:"rss_ratio"`
	ConnectSeconds      float64 `json:"connect_seconds"`
	BaselineConnectSecs float64 `json:"baseline_connect_seconds"`
}

func summarize(o options, c, b *figures) *result {
	ms := func(d []time.Duration) float64 { return float64(medianDur(d)) / float64(time.Millisecond) }
	perStream := func(f *figures) float64 {
		return (f.Conns.RSSMiB - f.Idle.RSSMiB) * 1024 / float64(max(f.Conns.Connected, 1))
	}
	r := &result{CPUs: runtime.NumCPU(), Endpoints: o.Endpoints, Agents: o.Agents, Database: dbName(o.Database), TLS: o.TLS,
		Rounds: o.Rounds, NotifyAllMS: ms(c.Notified), AgentsLastMS: ms(c.AgentsLast), ClientsFirstMS: ms(c.ClientsFirst),
		BaselineNotifyAllMS: ms(b.Notified), RSSIdleMiB: c.Idle.RSSMiB, RSSStreamsMiB: c.Conns.RSSMiB, KiBPerStream: perStream(c),
		BaselineRSSIdleMiB: b.Idle.RSSMiB, BaselineRSSStreams: b.Conns.RSSMiB, BaselineKiBPerStrm: perStream(b),
		ConnectSeconds: c.Connect.Seconds(), BaselineConnectSecs: b.Connect.Seconds()}
	r.TimeRatio = r.NotifyAllMS / r.BaselineNotifyAllMS
	r.RSSRatio = r.RSSStreamsMiB / r.BaselineRSSStreams
	return r
}

func medianDur(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *result) print() {
	fmt.Printf("\n%d endpoints (%d update agents), %s, TLS %v, %d CPUs, median of %d rounds\n\n",
		r.Endpoints, r.Agents, r.Database, r.TLS, r.CPUs, r.Rounds)
	fmt.Printf("%-44s %12s %12s %8s\n", "", "hub", "baseline", "ratio")
	fmt.Printf("%-44s %10.0f ms %10.0f ms %7.2fx\n", "every endpoint notified", r.NotifyAllMS, r.BaselineNotifyAllMS, r.TimeRatio)
	fmt.Printf("%-44s %10.0f ms\n", "  of which: last agent notified", r.AgentsLastMS)
	fmt.Printf("%-44s %10.0f ms\n", "  first client (agents reported done)", r.ClientsFirstMS)
	fmt.Printf("%-44s %9.1f MiB %8.1f MiB\n", "server RSS idle", r.RSSIdleMiB, r.BaselineRSSIdleMiB)
	fmt.Printf("%-44s %9.1f MiB %8.1f MiB %7.2fx\n", fmt.Sprintf("server RSS with %d streams", r.Endpoints), r.RSSStreamsMiB, r.BaselineRSSStreams, r.RSSRatio)
	fmt.Printf("%-44s %8.1f KiB %8.1f KiB\n", "  per stream", r.KiBPerStream, r.BaselineKiBPerStrm)
	fmt.Printf("\nThe baseline writes each event to every stream at once: no store, no deliveries\n" +
		"recorded, no agents first. The hub records every delivery, notifies the agents,\n" +
		"waits for their reports, then notifies the clients.\n")
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
