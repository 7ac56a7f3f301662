package main

import (
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
)

// summary is the JSON the benchmark writes (-json): both scenarios'
// figures and the ratios agents/direct.
type summary struct {
	Endpoints   int   `json:"endpoints"`
	Agents      int   `json:"agents"`
	SizeBytes   int64 `json:"size_bytes"`
	Concurrency int   `json:"concurrency"`
	CPUs        int   `json:"cpus"`
	ServerLink  int64 `json:"server_link_bytes_per_second"` // 0: unlimited

	DirectServerBytes int64   `json:"direct_server_bytes"`
	AgentsServerBytes int64   `json:"agents_server_bytes"`
	ServerBytesRatio  float64 `json:"server_bytes_ratio"`
	OriginBytesDirect int64   `json:"origin_bytes_direct"`
	OriginBytesAgents int64   `json:"origin_bytes_agents"`
	AgentsServedBytes int64   `json:"agents_served_bytes"`

	DirectServerRequests int64 `json:"direct_server_requests"`
	AgentsServerRequests int64 `json:"agents_server_requests"`
	AgentsRequests       int64 `json:"agents_requests"`

	DirectSeconds               float64 `json:"direct_seconds"`
	AgentsSeconds               float64 `json:"agents_seconds"`
	TimeRatio                   float64 `json:"time_ratio"`
	DirectServerSyncSeconds     float64 `json:"direct_server_sync_seconds"`
	AgentsServerSyncSeconds     float64 `json:"agents_server_sync_seconds"`
	AgentsRefreshSeconds        float64 `json:"agents_refresh_seconds"`
	DirectEndpointsSeconds      float64 `json:"direct_endpoints_seconds"`
	AgentsEndpointsSeconds      float64 `json:"agents_endpoints_seconds"`
	DirectVerifiedEndpoints     int     `json:"direct_verified_endpoints"`
	AgentsVerifiedEndpoints     int     `json:"agents_verified_endpoints"`
	DirectPeakRSSMiB            float64 `json:"direct_peak_rss_mib"`
	AgentsPeakRSSMiB            float64 `json:"agents_peak_rss_mib"`
	DirectPeakHeapMiB           float64 `json:"direct_peak_heap_mib"`
	AgentsPeakHeapMiB           float64 `json:"agents_peak_heap_mib"`
	PeakRSSResetAfterSetup      bool    `json:"peak_rss_reset_after_setup"`
	DirectSetupSeconds          float64 `json:"direct_setup_seconds"`
	AgentsSetupSeconds          float64 `json:"agents_setup_seconds"`
	DirectFirstError            string  `json:"direct_first_error,omitempty"`
	AgentsFirstError            string  `json:"agents_first_error,omitempty"`
	ExpectedAgentsServerBytesLo int64   `json:"expected_agents_server_bytes_min"` // agents × size
}

// summarize combines the two scenarios.
func summarize(o options, d, a *scenarioResult) *summary {
	return &summary{
		Endpoints: o.Endpoints, Agents: o.Agents, SizeBytes: o.Size, Concurrency: o.Concurrency, CPUs: runtime.NumCPU(),
		ServerLink: o.ServerLink,

		DirectServerBytes: d.ServerBytes, AgentsServerBytes: a.ServerBytes,
		ServerBytesRatio:  ratio(float64(a.ServerBytes), float64(d.ServerBytes)),
		OriginBytesDirect: d.OriginBytes, OriginBytesAgents: a.OriginBytes, AgentsServedBytes: a.AgentsServed,

		DirectServerRequests: d.ServerRequests, AgentsServerRequests: a.ServerRequests, AgentsRequests: a.AgentsRequests,

		DirectSeconds: d.Seconds, AgentsSeconds: a.Seconds, TimeRatio: ratio(a.Seconds, d.Seconds),
		DirectServerSyncSeconds: d.ServerSyncSeconds, AgentsServerSyncSeconds: a.ServerSyncSeconds,
		AgentsRefreshSeconds:   a.AgentsRefreshSeconds,
		DirectEndpointsSeconds: d.EndpointsSeconds, AgentsEndpointsSeconds: a.EndpointsSeconds,
		DirectVerifiedEndpoints: d.Verified, AgentsVerifiedEndpoints: a.Verified,
		DirectPeakRSSMiB: d.PeakRSSMiB, AgentsPeakRSSMiB: a.PeakRSSMiB,
		DirectPeakHeapMiB: d.PeakHeapMiB, AgentsPeakHeapMiB: a.PeakHeapMiB,
		PeakRSSResetAfterSetup: d.PeakRSSReset && a.PeakRSSReset,
		DirectSetupSeconds:     d.SetupSeconds, AgentsSetupSeconds: a.SetupSeconds,
		DirectFirstError: d.FirstError, AgentsFirstError: a.FirstError,
		ExpectedAgentsServerBytesLo: int64(o.Agents) * o.Size,
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// printTable prints the figures side by side with the ratios.
func printTable(out io.Writer, s *summary) {
	link := "loopback, unlimited"
	if s.ServerLink > 0 {
		link = fmt.Sprintf("the server behind a %.0f Mbit/s link", float64(s.ServerLink)*8/1e6)
	}
	fmt.Fprintf(out, "\nfan-out of one new %s component to %d endpoints, %d update agents, %d updates in flight, %d CPUs, %s\n\n",
		mib(s.SizeBytes), s.Endpoints, s.Agents, s.Concurrency, s.CPUs, link)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(cells ...string) {
		for _, c := range cells {
			fmt.Fprint(tw, c, "\t")
		}
		fmt.Fprintln(tw)
	}
	row("", "direct", "through agents", "agents/direct")
	row("bytes leaving the server", mib(s.DirectServerBytes), mib(s.AgentsServerBytes), fmt.Sprintf("%.4f", s.ServerBytesRatio))
	row("bytes leaving the origin", mib(s.OriginBytesDirect), mib(s.OriginBytesAgents),
		fmt.Sprintf("%.2f", ratio(float64(s.OriginBytesAgents), float64(s.OriginBytesDirect))))
	row("bytes served by the agents", "-", mib(s.AgentsServedBytes), "")
	row("requests to the server", fmt.Sprint(s.DirectServerRequests), fmt.Sprint(s.AgentsServerRequests), "")
	row("time until all up to date", secs(s.DirectSeconds), secs(s.AgentsSeconds), fmt.Sprintf("%.2f", s.TimeRatio))
	row("  server sync from the origin", secs(s.DirectServerSyncSeconds), secs(s.AgentsServerSyncSeconds), "")
	row("  agents refresh from the server", "-", secs(s.AgentsRefreshSeconds), "")
	row("  endpoints update", secs(s.DirectEndpointsSeconds), secs(s.AgentsEndpointsSeconds), "")
	row("peak RSS (VmHWM)", fmt.Sprintf("%.0f MiB", s.DirectPeakRSSMiB), fmt.Sprintf("%.0f MiB", s.AgentsPeakRSSMiB),
		fmt.Sprintf("%.2f", ratio(s.AgentsPeakRSSMiB, s.DirectPeakRSSMiB)))
	row("peak Go heap", fmt.Sprintf("%.0f MiB", s.DirectPeakHeapMiB), fmt.Sprintf("%.0f MiB", s.AgentsPeakHeapMiB),
		fmt.Sprintf("%.2f", ratio(s.AgentsPeakHeapMiB, s.DirectPeakHeapMiB)))
	row("endpoints verified", fmt.Sprintf("%d/%d", s.DirectVerifiedEndpoints, s.Endpoints),
		fmt.Sprintf("%d/%d", s.AgentsVerifiedEndpoints, s.Endpoints), "")
	tw.Flush()
	fmt.Fprintf(out, "\nbytes: HTTP response bodies; expected with agents: at least %s (%d agents x the component) plus metadata\n",
		mib(s.ExpectedAgentsServerBytesLo), s.Agents)
	if !s.PeakRSSResetAfterSetup {
		fmt.Fprintln(out, "note: the kernel did not let the peak RSS be reset after the setup; it includes the setup")
	}
	for _, e := range []string{s.DirectFirstError, s.AgentsFirstError} {
		if e != "" {
			fmt.Fprintln(out, "first failure:", e)
		}
	}
}

// mib formats a byte count.
func mib(n int64) string {
	switch {
	case n >= 10<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}

func secs(s float64) string { return fmt.Sprintf("%.2f s", s) }
