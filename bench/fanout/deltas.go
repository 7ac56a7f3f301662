package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"text/tabwriter"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/delta"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/trust"
)

// The deltas comparison (-deltas, README.md "Deltas"): the agents
// scenario twice with the same content, version 2 being version 1 with
// 0.5% of its records changed: once with the origin publishing no delta
// (the baseline), once with the delta from version 1.

// record is the size of the records of the Similar content.
const record = 64

// writeSimilar writes version of the Similar content to name: version 1
// is Size pseudo-random bytes (kept open as the endpoints' base),
// version 2 is version 1 with 0.5% of its records rewritten.
func (w *world) writeSimilar(name, version string) error {
	if version == oldVersion {
		if err := writeRandom(name, w.cfg.Size, version); err != nil {
			return err
		}
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("open the base: %w", err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			f.Close()
			return fmt.Errorf("hash the base: %w", err)
		}
		w.base, w.baseSHA = f, hex.EncodeToString(h.Sum(nil))
		return nil
	}
	b := make([]byte, w.cfg.Size)
	if _, err := w.base.ReadAt(b, 0); err != nil {
		return fmt.Errorf("read the base: %w", err)
	}
	rng := rand.New(rand.NewPCG(uint64(len(version)), 16))
	records := int(w.cfg.Size / record)
	for range max(records/200, 1) {
		off := rng.IntN(max(records, 1)) * record
		for j := off; j < min(off+record, len(b)); j++ {
			b[j] = byte(rng.Uint32())
		}
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return fmt.Errorf("write the payload: %w", err)
	}
	return nil
}

// fromDelta is an endpoint's update of one file by delta, as
// internal/update does it: look the delta from version 1 up in the
// signed metadata, check that it names the base the endpoint holds and
// the signed file as its result, download it verified, apply it to the
// base while hashing the result (the bytes then dropped) and check the
// result's signed length and sha256. No delta offered is (0, false,
// nil): the caller downloads the file.
func (w *world) fromDelta(ctx context.Context, g *group, v *trust.View, tf *metadata.TargetFiles) (int64, bool, error) {
	dp := index.DeltaPath("components", component, newVersion, fileName, oldVersion)
	dtf, err := v.Target(ctx, dp)
	if failure.ClassOf(err) == failure.NotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	d, err := index.DeltaOf(dtf.Custom)
	if err != nil || d == nil || d.BaseSHA256 != w.baseSHA || d.ResultSHA256 != hex.EncodeToString(tf.Hashes["sha256"]) ||
		d.ResultLength != tf.Length {
		return 0, false, failure.Newf(failure.Verification, dp, "the delta is not from the base held to the signed file (%v)", err)
	}
	var buf bytes.Buffer
	n, err := download(ctx, g.client, v, dp, dtf, make([]byte, 32<<10), &buf)
	if err != nil {
		return n, false, err
	}
	if err := delta.ApplyVerified(w.base, &buf, io.Discard, tf.Length, tf.Hashes["sha256"]); err != nil {
		return n, false, failure.New(failure.Verification, "apply "+dp, err)
	}
	w.deltas.Add(1)
	return n, true, nil
}

// deltaSummary is the JSON of the deltas comparison (-deltas -json).
type deltaSummary struct {
	Endpoints   int   `json:"endpoints"`
	Agents      int   `json:"agents"`
	SizeBytes   int64 `json:"size_bytes"`
	Concurrency int   `json:"concurrency"`
	CPUs        int   `json:"cpus"`
	ServerLink  int64 `json:"server_link_bytes_per_second"` // 0: unlimited

	Full  *scenarioResult `json:"deltas_off"`
	Delta *scenarioResult `json:"deltas_on"`

	ServerBytesRatio float64 `json:"server_bytes_ratio"` // on / off
	OriginBytesRatio float64 `json:"origin_bytes_ratio"`
	AgentsBytesRatio float64 `json:"agents_served_bytes_ratio"`
	TimeRatio        float64 `json:"time_ratio"`
	// DeltaBytes is the size of the delta the origin published.
	DeltaBytes int64 `json:"delta_bytes"`
}

// summarizeDeltas combines the two runs of the deltas comparison.
func summarizeDeltas(o options, off, on *scenarioResult) *deltaSummary {
	return &deltaSummary{Endpoints: o.Endpoints, Agents: o.Agents, SizeBytes: o.Size, Concurrency: o.Concurrency,
		CPUs: runtime.NumCPU(), ServerLink: o.ServerLink, Full: off, Delta: on,
		ServerBytesRatio: ratio(float64(on.ServerBytes), float64(off.ServerBytes)),
		OriginBytesRatio: ratio(float64(on.OriginBytes), float64(off.OriginBytes)),
		AgentsBytesRatio: ratio(float64(on.AgentsServed), float64(off.AgentsServed)),
		TimeRatio:        ratio(on.Seconds, off.Seconds), DeltaBytes: on.DeltaBytes}
}

// printDeltaTable prints the deltas comparison.
func printDeltaTable(out io.Writer, s *deltaSummary) {
	link := "loopback, unlimited"
	if s.ServerLink > 0 {
		link = fmt.Sprintf("the server behind a %.0f Mbit/s link", float64(s.ServerLink)*8/1e6)
	}
	fmt.Fprintf(out, "\nfan-out of a new version of a %s component differing by 0.5%% (delta: %s) to %d endpoints through %d update agents, %d updates in flight, %d CPUs, %s\n\n",
		mib(s.SizeBytes), mib(s.DeltaBytes), s.Endpoints, s.Agents, s.Concurrency, s.CPUs, link)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(cells ...string) {
		for _, c := range cells {
			fmt.Fprint(tw, c, "\t")
		}
		fmt.Fprintln(tw)
	}
	f, d := s.Full, s.Delta
	r := func(a, b float64) string { return fmt.Sprintf("%.4f", ratio(a, b)) }
	row("", "deltas off", "deltas on", "on/off")
	row("bytes leaving the origin", mib(f.OriginBytes), mib(d.OriginBytes), r(float64(d.OriginBytes), float64(f.OriginBytes)))
	row("  of which targets", mib(f.OriginTargetBytes), mib(d.OriginTargetBytes), r(float64(d.OriginTargetBytes), float64(f.OriginTargetBytes)))
	row("bytes leaving the server", mib(f.ServerBytes), mib(d.ServerBytes), r(float64(d.ServerBytes), float64(f.ServerBytes)))
	row("  of which targets", mib(f.ServerTargetBytes), mib(d.ServerTargetBytes), r(float64(d.ServerTargetBytes), float64(f.ServerTargetBytes)))
	row("bytes served by the agents", mib(f.AgentsServed), mib(d.AgentsServed), r(float64(d.AgentsServed), float64(f.AgentsServed)))
	row("time until all up to date", secs(f.Seconds), secs(d.Seconds), fmt.Sprintf("%.2f", s.TimeRatio))
	row("  server sync from the origin", secs(f.ServerSyncSeconds), secs(d.ServerSyncSeconds), "")
	row("  agents refresh from the server", secs(f.AgentsRefreshSeconds), secs(d.AgentsRefreshSeconds), "")
	row("  endpoints update", secs(f.EndpointsSeconds), secs(d.EndpointsSeconds), "")
	row("files rebuilt from a delta: server, agents", fmt.Sprintf("%d, %d", f.ServerRebuilt, f.AgentsRebuilt),
		fmt.Sprintf("%d, %d", d.ServerRebuilt, d.AgentsRebuilt), "")
	row("endpoints that applied a delta", fmt.Sprint(f.EndpointDeltas), fmt.Sprint(d.EndpointDeltas), "")
	row("peak RSS (VmHWM)", fmt.Sprintf("%.0f MiB", f.PeakRSSMiB), fmt.Sprintf("%.0f MiB", d.PeakRSSMiB),
		fmt.Sprintf("%.2f", ratio(d.PeakRSSMiB, f.PeakRSSMiB)))
	row("endpoints verified", fmt.Sprintf("%d/%d", f.Verified, s.Endpoints), fmt.Sprintf("%d/%d", d.Verified, s.Endpoints), "")
	tw.Flush()
	fmt.Fprintf(out, "\nbytes: HTTP response bodies (targets: files, deltas and category indexes); target with deltas: the server sends at most %d deltas (%s) plus metadata\n",
		s.Agents, mib(int64(s.Agents)*s.DeltaBytes))
	for _, e := range []string{f.FirstError, d.FirstError} {
		if e != "" {
			fmt.Fprintln(out, "first failure:", e)
		}
	}
}
