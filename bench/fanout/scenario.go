package main

import (
	"context"
	"runtime/debug"
	"time"
)

// scenarioResult is what one scenario measured. Bytes are HTTP response
// body bytes written by the handlers (headers not counted).
type scenarioResult struct {
	Scenario    string `json:"scenario"`
	Endpoints   int    `json:"endpoints"`
	Agents      int    `json:"agents"` // 0 in the direct scenario
	SizeBytes   int64  `json:"size_bytes"`
	Concurrency int    `json:"concurrency"`

	// Verified endpoints hold the new version, verified, and trust the
	// new metadata; Failed did not, FirstError says why.
	Verified   int    `json:"verified_endpoints"`
	Failed     int    `json:"failed_endpoints"`
	FirstError string `json:"first_error,omitempty"`

	ServerBytes    int64 `json:"server_bytes"`
	ServerRequests int64 `json:"server_requests"`
	OriginBytes    int64 `json:"origin_bytes"`
	AgentsServed   int64 `json:"agents_served_bytes"`
	AgentsRequests int64 `json:"agents_requests"`

	SetupSeconds   float64 `json:"setup_seconds"`
	PublishSeconds float64 `json:"publish_seconds"`
	// Seconds is from the end of the publish until every endpoint is up
	// to date: ServerSync + AgentsRefresh + Endpoints.
	Seconds              float64 `json:"seconds"`
	ServerSyncSeconds    float64 `json:"server_sync_seconds"`
	AgentsRefreshSeconds float64 `json:"agents_refresh_seconds"`
	EndpointsSeconds     float64 `json:"endpoints_seconds"`

	// The deltas comparison (-deltas): the size of the delta published,
	// the files the server and the agents rebuilt from a delta, the
	// endpoints that applied one.
	DeltaBytes int64 `json:"delta_bytes,omitempty"`
	// Target bytes (files, deltas, indexes) of ServerBytes, OriginBytes.
	ServerTargetBytes int64 `json:"server_target_bytes"`
	OriginTargetBytes int64 `json:"origin_target_bytes"`
	ServerRebuilt     int64 `json:"server_rebuilt"`
	AgentsRebuilt     int64 `json:"agents_rebuilt"`
	EndpointDeltas    int64 `json:"endpoint_deltas"`

	// PeakRSSMiB is the process's VmHWM, reset after the setup when the
	// kernel allows it (PeakRSSReset); PeakHeapMiB is the largest sampled
	// Go heap (live and not yet swept objects) from the publish on.
	PeakRSSMiB   float64 `json:"peak_rss_mib"`
	PeakRSSReset bool    `json:"peak_rss_reset"`
	PeakHeapMiB  float64 `json:"peak_heap_mib"`
}

// measure runs one scenario: builds its world up to date with version 1,
// publishes version 2 and times its way to every endpoint.
func measure(ctx context.Context, cfg config, mode string) (*scenarioResult, error) {
	cfg = cfg.withDefaults()
	res := &scenarioResult{Scenario: mode, Endpoints: cfg.Endpoints, SizeBytes: cfg.Size, Concurrency: cfg.Concurrency}
	if mode == viaAgents {
		res.Agents = cfg.Agents
	}
	start := time.Now()
	cfg.Log.Printf("setup: origin, server, agents (%d), %d endpoints up to date with version %s (deltas: %v)",
		res.Agents, cfg.Endpoints, oldVersion, cfg.Deltas)
	w, err := newWorld(ctx, cfg, mode)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	res.SetupSeconds = time.Since(start).Seconds()
	w.resetCounters()
	debug.FreeOSMemory()
	res.PeakRSSReset = resetPeakRSS() == nil
	heap := startHeapSampler(5 * time.Millisecond)
	err = w.event(ctx, res)
	res.PeakHeapMiB = float64(heap.stop()) / (1 << 20)
	if err != nil {
		return nil, err
	}
	if res.PeakRSSMiB, err = peakRSSMiB(); err != nil {
		return nil, err
	}
	res.ServerBytes, res.ServerRequests = w.serverBytes.n.Load(), w.serverBytes.requests.Load()
	res.OriginBytes = w.originBytes.n.Load()
	res.AgentsServed = w.agentsServed()
	res.DeltaBytes, res.ServerRebuilt, res.AgentsRebuilt = w.deltaBytes, w.serverRebuilt.Load(), w.agentsRebuilt.Load()
	res.EndpointDeltas = w.deltas.Load()
	res.ServerTargetBytes, res.OriginTargetBytes = w.serverBytes.targets.Load(), w.originBytes.targets.Load()
	for _, a := range w.agents {
		res.AgentsRequests += a.bytes.requests.Load()
	}
	cfg.Log.Printf("done: %d/%d endpoints verified in %.1f s", res.Verified, res.Endpoints, res.Seconds)
	return res, nil
}

// event is the measured event: publish the new version, the server's
// sync, the agents' refresh (agents scenario), the endpoints' updates.
func (w *world) event(ctx context.Context, res *scenarioResult) error {
	log := w.cfg.Log
	log.Printf("publishing version %s (%s)", newVersion, mib(w.cfg.Size))
	t := time.Now()
	if err := w.publish(ctx, newVersion, w.cfg.Size); err != nil {
		return err
	}
	res.PublishSeconds = time.Since(t).Seconds()
	t0 := time.Now()
	if err := w.syncServer(ctx); err != nil {
		return err
	}
	t1 := time.Now()
	if w.mode == viaAgents {
		log.Printf("server synced in %.2f s; refreshing %d agents", t1.Sub(t0).Seconds(), len(w.agents))
		if err := w.refreshAgents(ctx); err != nil {
			return err
		}
	}
	t2 := time.Now()
	log.Printf("updating %d endpoints, %d in flight", len(w.clients), w.cfg.Concurrency)
	errs := w.updateClients(ctx, newVersion)
	t3 := time.Now()
	res.ServerSyncSeconds, res.AgentsRefreshSeconds = t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds()
	res.EndpointsSeconds, res.Seconds = t3.Sub(t2).Seconds(), t3.Sub(t0).Seconds()
	n, first := failures(errs)
	res.Failed, res.Verified = n, len(errs)-n
	if first != nil {
		res.FirstError = first.Error()
	}
	return nil
}
