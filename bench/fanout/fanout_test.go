package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/trust"
)

// small is a scenario that runs in a few seconds: 40 endpoints behind
// 4 agents, a 64 KiB component, a repository of 16 hash bins.
func small(t *testing.T) config {
	return config{Endpoints: 40, Agents: 4, Size: 64 << 10, Concurrency: 8, Bins: 16, Dir: t.TempDir()}
}

func TestScenarios(t *testing.T) {
	ctx := context.Background()
	cfg := small(t)
	d, err := measure(ctx, cfg, direct)
	if err != nil {
		t.Fatal(err)
	}
	a, err := measure(ctx, cfg, viaAgents)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*scenarioResult{d, a} {
		if r.Verified != cfg.Endpoints || r.Failed != 0 {
			t.Errorf("%s: %d endpoints verified, %d failed (%s)", r.Scenario, r.Verified, r.Failed, r.FirstError)
		}
		// The server mirrors the new version from the origin once.
		if r.OriginBytes < cfg.Size || r.OriginBytes > 2*cfg.Size {
			t.Errorf("%s: %d bytes left the origin, want about %d", r.Scenario, r.OriginBytes, cfg.Size)
		}
		if r.Seconds <= 0 || r.PeakHeapMiB <= 0 || r.PeakRSSMiB <= 0 {
			t.Errorf("%s: missing figures: %+v", r.Scenario, r)
		}
	}
	all := int64(cfg.Endpoints) * cfg.Size
	if d.ServerBytes < all {
		t.Errorf("direct: the server sent %d bytes, less than %d endpoints x %d", d.ServerBytes, cfg.Endpoints, cfg.Size)
	}
	if a.ServerBytes < int64(cfg.Agents)*cfg.Size || a.ServerBytes >= d.ServerBytes/2 {
		t.Errorf("agents: the server sent %d bytes (direct: %d), want about %d agents x %d", a.ServerBytes, d.ServerBytes, cfg.Agents, cfg.Size)
	}
	if a.AgentsServed < all || d.AgentsServed != 0 {
		t.Errorf("agents served %d bytes (direct scenario: %d), want at least %d", a.AgentsServed, d.AgentsServed, all)
	}
	if a.AgentsRefreshSeconds <= 0 || d.AgentsRefreshSeconds > 0.5 {
		t.Errorf("agents refresh: %.3f s with agents, %.3f s without", a.AgentsRefreshSeconds, d.AgentsRefreshSeconds)
	}
}

// A byte flipped in one agent's copy of the new target: that agent's
// endpoints refuse it (verification failure) and keep trusting the old
// metadata; every other endpoint updates.
func TestTamperedAgentCopyIsRejected(t *testing.T) {
	ctx := context.Background()
	cfg := small(t)
	w, err := newWorld(ctx, cfg, viaAgents)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	before := trustedTimestamp(t, w, 0)
	if err := w.publish(ctx, newVersion, cfg.Size); err != nil {
		t.Fatal(err)
	}
	if err := w.syncServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.refreshAgents(ctx); err != nil {
		t.Fatal(err)
	}
	flipByte(t, filepath.Join(w.agents[0].dir, "vendor", "targets", "components", component, newVersion))
	errs := w.updateClients(ctx, newVersion)
	for i, err := range errs {
		switch {
		case i%cfg.Agents == 0 && !failure.Is(err, failure.Verification):
			t.Errorf("endpoint %d (tampered agent): err = %v, want a verification failure", i, err)
		case i%cfg.Agents == 0 && trustedTimestamp(t, w, i) != before:
			t.Errorf("endpoint %d (tampered agent) committed the new metadata", i)
		case i%cfg.Agents != 0 && err != nil:
			t.Errorf("endpoint %d: %v", i, err)
		case i%cfg.Agents != 0 && trustedTimestamp(t, w, i) <= before:
			t.Errorf("endpoint %d does not trust the new metadata", i)
		}
	}
}

// An endpoint whose source has not picked up the new version is not up
// to date: the run says the source is stale.
func TestAgentNotRefreshedIsStale(t *testing.T) {
	ctx := context.Background()
	cfg := small(t)
	cfg.Endpoints = cfg.Agents
	w, err := newWorld(ctx, cfg, viaAgents)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.publish(ctx, newVersion, cfg.Size); err != nil {
		t.Fatal(err)
	}
	if err := w.syncServer(ctx); err != nil {
		t.Fatal(err)
	}
	for i, err := range w.updateClients(ctx, newVersion) {
		if !failure.Is(err, failure.Stale) {
			t.Errorf("endpoint %d: err = %v, want stale", i, err)
		}
	}
}

func trustedTimestamp(t *testing.T, w *world, i int) int64 {
	t.Helper()
	s, err := trust.Open(w.clients[i], trust.Options{Kind: string(repo.Vendor), Now: w.now})
	if err != nil {
		t.Fatal(err)
	}
	ts, _, err := s.Versions()
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// flipByte flips the middle byte of the only file in dir, in place.
func flipByte(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("agent's copy of the new version: %v, %d files", err, len(entries))
	}
	f, err := os.OpenFile(filepath.Join(dir, entries[0].Name()), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// TestServerLink: with the server behind a paced link every endpoint
// still verifies every byte, and the server's bytes are all counted.
func TestServerLink(t *testing.T) {
	cfg := small(t)
	cfg.ServerLink = 64 << 20
	d, err := measure(context.Background(), cfg, direct)
	if err != nil {
		t.Fatal(err)
	}
	if d.Verified != cfg.Endpoints || d.ServerBytes < int64(cfg.Endpoints)*cfg.Size {
		t.Fatalf("%d endpoints verified, the server sent %d bytes (%s)", d.Verified, d.ServerBytes, d.FirstError)
	}
}

// TestDeltas: the deltas comparison at a small scale. With deltas off
// every party sends the file; with deltas on the origin sends one delta
// (and the index) of targets, the server one delta per agent, every
// agent and the server rebuild the file from the delta and every
// endpoint applies it.
func TestDeltas(t *testing.T) {
	ctx := context.Background()
	cfg := small(t)
	cfg.Size, cfg.Similar = 1<<20, true
	off, err := measure(ctx, cfg, viaAgents)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Deltas = true
	on, err := measure(ctx, cfg, viaAgents)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*scenarioResult{off, on} {
		if r.Verified != cfg.Endpoints || r.Failed != 0 {
			t.Fatalf("deltas %v: %d endpoints verified, %d failed (%s)", r == on, r.Verified, r.Failed, r.FirstError)
		}
	}
	if off.EndpointDeltas != 0 || off.ServerRebuilt != 0 || off.AgentsRebuilt != 0 || off.ServerTargetBytes < int64(cfg.Agents)*cfg.Size {
		t.Errorf("deltas off: %+v", off)
	}
	if on.DeltaBytes <= 0 || on.DeltaBytes > cfg.Size/20 {
		t.Fatalf("deltas on: a delta of %d bytes for a %d-byte file changed by 0.5%%", on.DeltaBytes, cfg.Size)
	}
	if on.EndpointDeltas != int64(cfg.Endpoints) || on.ServerRebuilt != 1 || on.AgentsRebuilt != int64(cfg.Agents) {
		t.Errorf("deltas on: %d endpoints applied the delta, the server rebuilt %d files, the agents %d", on.EndpointDeltas, on.ServerRebuilt, on.AgentsRebuilt)
	}
	// Targets: the delta (and the category index, under 1 KiB) once from
	// the origin, once per agent from the server.
	if on.OriginTargetBytes < on.DeltaBytes || on.OriginTargetBytes > on.DeltaBytes+1024 {
		t.Errorf("deltas on: %d target bytes left the origin, want the delta's %d and the index", on.OriginTargetBytes, on.DeltaBytes)
	}
	if n := int64(cfg.Agents); on.ServerTargetBytes < n*on.DeltaBytes || on.ServerTargetBytes > n*(on.DeltaBytes+1024) {
		t.Errorf("deltas on: %d target bytes left the server, want %d agents x the delta's %d and the index", on.ServerTargetBytes, n, on.DeltaBytes)
	}
}
