// Command reports benchmarks report ingestion across several server
// processes on one PostgreSQL database: N enrolled endpoints each upload
// one update report, the uploads spread evenly over one window (a
// minute), first all to one `cascade server run` process (the baseline),
// then split across two (the second made by `cascade server join`), same
// run, same endpoints. It measures the reports accepted per second (N
// over the time from the first scheduled upload until the last answer)
// and the latency of each upload, from its scheduled time (so time spent
// waiting for a connection counts) and from when it was sent.
//
// The endpoints upload over a bounded pool of kept-alive HTTPS
// connections (-conns in all, split evenly across the server processes,
// so both phases have as many uploads in flight), not one connection
// each: the driver is one process under this machine's open-file limit.
//
//	go run ./bench/reports -database postgres://... [-endpoints 100000] [-window 1m] [-conns 128] [-json FILE]
//
// The run gets a new schema in that database, dropped at the end.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cascade-update/cascade/bench/internal/benchdb"
	"github.com/cascade-update/cascade/bench/internal/cluster"
	"github.com/cascade-update/cascade/bench/internal/loadavg"
	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// phase is one measurement: the endpoints against some processes.
type phase struct {
	Processes   int     `json:"processes"`
	Reports     int     `json:"reports"`
	Failed      int     `json:"failed"`
	FirstError  string  `json:"first_error,omitempty"`
	SpanS       float64 `json:"span_s"`
	PerSecond   float64 `json:"reports_per_s"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	MaxMS       float64 `json:"max_ms"`
	SendP50MS   float64 `json:"send_p50_ms"`
	SendP99MS   float64 `json:"send_p99_ms"`
	StoredAfter int     `json:"stored"`
	Load        string  `json:"load"`
}

type output struct {
	CPUs       int     `json:"cpus"`
	Endpoints  int     `json:"endpoints"`
	WindowS    float64 `json:"window_s"`
	Conns      int     `json:"conns"`
	EnrollS    float64 `json:"enroll_s"`
	One        phase   `json:"one_process"`
	Two        phase   `json:"two_processes"`
	RateRatio  float64 `json:"rate_ratio"`
	P99Ratio   float64 `json:"p99_ratio"`
	LoadBefore string  `json:"load_before"`
}

func main() {
	database := flag.String("database", os.Getenv("CASCADE_TEST_POSTGRES"), "PostgreSQL database URL")
	n := flag.Int("endpoints", 100000, "endpoints, each uploading one report per phase")
	window := flag.Duration("window", time.Minute, "the uploads are spread evenly over this")
	conns := flag.Int("conns", 128, "kept-alive connections in all, split evenly across the server processes")
	jsonOut := flag.String("json", "", "write the figures to this file")
	flag.Parse()
	log.SetFlags(0)
	if *database == "" {
		log.Fatal("reports needs a PostgreSQL database: -database or CASCADE_TEST_POSTGRES")
	}
	out, err := run(context.Background(), *database, *n, *window, *conns)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\n%d endpoints, one report each within %s, %d connections, %d CPUs, load before %s\n",
		out.Endpoints, *window, out.Conns, out.CPUs, out.LoadBefore)
	fmt.Printf("%-36s %14s %14s %8s\n", "", "2 processes", "1 process", "ratio")
	fmt.Printf("%-36s %14.0f %14.0f %7.2fx\n", "reports/s", out.Two.PerSecond, out.One.PerSecond, out.RateRatio)
	fmt.Printf("%-36s %11.0f ms %11.0f ms %7.2fx\n", "p99 latency (from scheduled time)", out.Two.P99MS, out.One.P99MS, out.P99Ratio)
	fmt.Printf("%-36s %11.0f ms %11.0f ms\n", "p50 latency (from scheduled time)", out.Two.P50MS, out.One.P50MS)
	fmt.Printf("%-36s %11.0f ms %11.0f ms\n", "p99 latency (from sending)", out.Two.SendP99MS, out.One.SendP99MS)
	fmt.Printf("%-36s %14d %14d\n", "failed uploads", out.Two.Failed, out.One.Failed)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func run(ctx context.Context, database string, n int, window time.Duration, conns int) (*output, error) {
	out := &output{CPUs: runtime.NumCPU(), Endpoints: n, WindowS: window.Seconds(), Conns: conns, LoadBefore: loadavg.Read()}
	dsn, cleanup, err := benchdb.New(ctx, database, "bench_reports_")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	c, err := cluster.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	a, err := c.StartWriter(ctx, nil)
	if err != nil {
		return nil, err
	}
	b, err := c.Add(ctx, nil)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	secrets, err := enroll(ctx, dsn, n)
	if err != nil {
		return nil, fmt.Errorf("enroll the endpoints: %w", err)
	}
	out.EnrollS = time.Since(start).Seconds()
	log.Printf("enrolled %d endpoints in %.1f s", n, out.EnrollS)

	log.Printf("one process: %d reports within %s", n, window)
	one, err := upload(ctx, c, []*cluster.Server{a}, secrets, window, conns, "one")
	if err != nil {
		return nil, err
	}
	out.One = *one
	if err := b.StartFollower(ctx); err != nil {
		return nil, err
	}
	log.Printf("two processes: %d reports within %s", n, window)
	two, err := upload(ctx, c, []*cluster.Server{a, b}, secrets, window, conns, "two")
	if err != nil {
		return nil, err
	}
	out.Two = *two
	out.RateRatio = two.PerSecond / one.PerSecond
	out.P99Ratio = two.P99MS / one.P99MS
	return out, nil
}

// enroll adds n endpoints with credentials straight to the store, in
// batches, and returns their secrets.
func enroll(ctx context.Context, dsn string, n int) ([]string, error) {
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	secrets := make([]string, n)
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		es := make([]store.Endpoint, 0, batch)
		for i := lo; i < min(n, lo+batch); i++ {
			s, h, err := store.NewSecret("cascade_ep_")
			if err != nil {
				return nil, err
			}
			secrets[i] = s
			es = append(es, store.Endpoint{Hostname: fmt.Sprintf("ep-%06d.corp.example", i), Domain: "default", CredentialHash: h,
				Addresses: []string{fmt.Sprintf("10.%d.%d.%d", i/62500, i/250%250, i%250+1)}})
		}
		if err := st.CreateEndpoints(ctx, es); err != nil {
			return nil, err
		}
	}
	return secrets, nil
}

// upload has every endpoint upload one report, endpoint i at start +
// i*window/n to server i mod len(servers), over conns connections split
// evenly across the servers.
func upload(ctx context.Context, c *cluster.Cluster, servers []*cluster.Server, secrets []string, window time.Duration,
	conns int, tag string) (*phase, error) {
	n := len(secrets)
	before, err := countReports(ctx, c)
	if err != nil {
		return nil, err
	}
	pgStarted, err := c.Started(ctx)
	if err != nil {
		return nil, err
	}
	type job struct {
		i     int
		sched time.Time
	}
	conns /= len(servers)
	queues := make([]chan job, len(servers))
	clients := make([]*http.Client, len(servers))
	for k, s := range servers {
		queues[k] = make(chan job, n)
		tr := api.NewTransport(s.FP, nil)
		tr.ForceAttemptHTTP2 = false
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost = conns, conns
		defer tr.CloseIdleConnections()
		clients[k] = &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	}
	lat := make([]time.Duration, n)  // from the scheduled time
	send := make([]time.Duration, n) // from sending
	var failed atomic.Int64
	var firstErr atomic.Value
	var last atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(100 * time.Millisecond)
	for k, s := range servers {
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range queues[k] {
					cl, err := api.NewClient(api.ClientOptions{URL: s.URL, Token: secrets[j.i], Fingerprint: s.FP,
						HTTPClient: clients[k], Timeout: 5 * time.Minute, UserAgent: "cascade-bench"})
					if err == nil {
						sent := time.Now()
						err = cl.Call(ctx, http.MethodPost, api.PathReports, nil, api.ReportUpload{Report: newReport(tag, j.i)}, nil)
						now := time.Now()
						if err == nil {
							send[j.i] = max(now.Sub(sent), 1)
							lat[j.i] = max(now.Sub(j.sched), 1)
						}
						for t := last.Load(); now.UnixNano() > t && !last.CompareAndSwap(t, now.UnixNano()); t = last.Load() {
						}
					}
					if err != nil {
						if failed.Add(1) == 1 {
							firstErr.Store(err.Error())
						}
					}
				}
			}()
		}
	}
	for i := range n {
		sched := start.Add(time.Duration(int64(window) * int64(i) / int64(n)))
		if d := time.Until(sched); d > 0 {
			time.Sleep(d)
		}
		queues[i%len(servers)] <- job{i, sched}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if err := c.Restarted(ctx, pgStarted); err != nil {
		return nil, err
	}
	p := &phase{Processes: len(servers), Reports: n, Failed: int(failed.Load()), Load: loadavg.Read()}
	if e, ok := firstErr.Load().(string); ok {
		p.FirstError = e
	}
	p.SpanS = time.Unix(0, last.Load()).Sub(start).Seconds()
	p.PerSecond = float64(n-p.Failed) / p.SpanS
	// Only the accepted uploads (a failed one keeps 0).
	lat, send = slices.DeleteFunc(lat, func(d time.Duration) bool { return d == 0 }),
		slices.DeleteFunc(send, func(d time.Duration) bool { return d == 0 })
	if len(lat) == 0 {
		return nil, fmt.Errorf("every upload failed: %s", p.FirstError)
	}
	msq := func(v []time.Duration, q float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(q*float64(len(s))))]) / float64(time.Millisecond)
	}
	p.P50MS, p.P99MS, p.MaxMS = msq(lat, 0.50), msq(lat, 0.99), msq(lat, 1)
	p.SendP50MS, p.SendP99MS = msq(send, 0.50), msq(send, 0.99)
	after, err := countReports(ctx, c)
	if err != nil {
		return nil, err
	}
	p.StoredAfter = after - before
	log.Printf("  %d processes: %.0f reports/s over %.1f s, p50 %.0f ms, p99 %.0f ms, %d failed, %d stored, load %s",
		p.Processes, p.PerSecond, p.SpanS, p.P50MS, p.P99MS, p.Failed, p.StoredAfter, p.Load)
	if p.Failed > 0 {
		log.Printf("  first failure: %s", p.FirstError)
		for _, s := range servers {
			shown := 0
			for _, line := range strings.Split(s.Output(), "\n") {
				if strings.Contains(line, "ERROR") && shown < 3 {
					log.Printf("  %s: %s", s.Name, line)
					shown++
				}
			}
		}
	}
	if p.StoredAfter != n-p.Failed {
		return nil, fmt.Errorf("%d uploads accepted but %d reports stored", n-p.Failed, p.StoredAfter)
	}
	return p, nil
}

func countReports(ctx context.Context, c *cluster.Cluster) (int, error) {
	var n int
	if err := c.DB.QueryRowContext(ctx, `SELECT count(*) FROM reports`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the stored reports: %w", err)
	}
	return n, nil
}

// newReport is an endpoint's report of a scheduled run (the size and shape
// of the ingestion benchmark's in internal/server).
func newReport(tag string, i int) json.RawMessage {
	now := time.Now().UTC()
	rep := report.Report{ID: fmt.Sprintf("%s-%d", tag, i), Role: "client", Trigger: "scheduled", Started: now.Add(-3 * time.Second), Finished: now,
		Categories: []*report.Category{
			{Category: category.DomainSettings, Result: report.UpToDate, Source: "agent:ua-1",
				Before: map[string]string{"policy": "12", "deployment": "40", "domain.default": "3"},
				After:  map[string]string{"policy": "12", "deployment": "40", "domain.default": "3"}},
			{Category: category.Components, Result: report.Updated, Source: "server", Bytes: 48 << 20,
				Before: map[string]string{"pattern": "17.734.00", "engine": "12.0.1001"},
				After:  map[string]string{"pattern": "17.735.00", "engine": "12.0.1001"}},
		}}
	rep.Finish(now)
	b, _ := json.Marshal(rep)
	return b
}
