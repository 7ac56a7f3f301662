package update

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failover"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
)

// deadSources returns n URLs of one kind of dead source.
func (w *world) deadSources(kind string, n int) []string {
	urls := make([]string, n)
	switch kind {
	case "refused":
		for i := range urls {
			urls[i] = w.refused()
		}
	case "hanging":
		base := w.hanging()
		for i := range urls {
			urls[i] = fmt.Sprintf("%sh%d/", base, i)
		}
	case "notfound":
		base := w.serve(http.NotFoundHandler())
		for i := range urls {
			urls[i] = fmt.Sprintf("%sn%d/", base, i)
		}
	}
	return urls
}

// BenchmarkPickLast measures the time to update from entry 1024 when the
// 1023 entries before it refuse connections, accept and never answer, or
// answer 404, with cascade's ordered probe-ahead walk and with a
// sequential walk (one source at a time, the same 1 s response timeout).
// A sequential walk of hanging sources takes 1023 timeouts; it is measured
// over 16 sources and reported scaled to 1023 (metric seq-s/1023).
func BenchmarkPickLast(b *testing.B) {
	for _, kind := range []string{"refused", "hanging", "notfound"} {
		for _, mode := range []string{"ordered", "sequential"} {
			b.Run(kind+"/"+mode, func(b *testing.B) { benchPick(b, kind, mode) })
		}
	}
}

func benchPick(b *testing.B, kind, mode string) {
	w := newWorld(b)
	w.publish("1.0")
	live := w.serveDir(w.snapshot())
	n := 1023
	fo := failover.Options{}
	if mode == "sequential" {
		fo = failover.Options{MaxInFlight: 1, Hedge: time.Hour}
		if kind == "hanging" {
			n = 16
		}
	}
	urls := append(w.deadSources(kind, n), live)
	pl := planFor(b, live, plan.Manual, urls...)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		e := w.endpointWith(fetch.Options{ConnectTimeout: time.Second, ResponseHeaderTimeout: time.Second}, fo)
		b.StartTimer()
		start := time.Now()
		rep := e.runner.Run(context.Background(), Request{Plan: pl})
		total += time.Since(start)
		b.StopTimer()
		rc := catReport(b, rep, category.Components)
		if rc.Result != report.Updated || rc.Source != "origin" || len(rc.Attempts) != n {
			b.Fatalf("%s: %s from %s after %d attempts", kind, rc.Result, rc.Source, len(rc.Attempts))
		}
		e.install.Close()
		b.StartTimer()
	}
	if mode == "sequential" && n < 1023 {
		per := total.Seconds() / float64(b.N)
		b.ReportMetric(per*1023/float64(n), "seq-s/1023")
	}
}
