// Command agent benchmarks an update agent (internal/agent) against nginx
// serving the same files, side by side in one run, with wrk:
//
//   - requests/s of conditional GETs of timestamp.json answered 304, at
//     512 connections, and on a new connection for each (64 at once);
//   - GB/s of a 256 MiB target with 8 connections;
//   - the same three for a second agent with the fast path off
//     (serve.fast_path: false: net/http alone), unless -fast-path-off=false;
//   - the agent's resident memory idle and with 1,000 open connections,
//     each left open after a revalidation (answered by internal/fastpath)
//     or after a download (answered by net/http); nginx's, master and
//     workers, alongside.
//
// It builds a vendor repository with the target, fills an agent's served
// tree from it with a real refresh (verified), runs the agent in its own
// process (this program, re-executed with "serve") and nginx on the same
// directory, and prints the figures and the ratios. Needs wrk and nginx
// (apt-get install -y wrk nginx). Usage:
//
//	go run ./bench/agent [-duration 10s] [-runs 3] [-fast-path-off=true] [-json FILE] [-cpuprofile FILE]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

// options are the flags.
type options struct {
	Duration time.Duration
	Runs     int
	Conns304 int
	// ConnsFresh is the concurrency of the test in which every request
	// comes on a new connection.
	ConnsFresh int
	ConnsBig   int
	Idle       int
	BigSize    int64
	JSON       string
	Keep       bool
	Profile    string
	// FastPathOff also measures an agent with the fast path off.
	FastPathOff bool
}

// result is what the benchmark measured.
type result struct {
	CPUs            int     `json:"cpus"`
	AgentRPS304     float64 `json:"agent_rps_304"`
	NginxRPS304     float64 `json:"nginx_rps_304"`
	Ratio304        float64 `json:"ratio_304"`
	BaselineRPS304  float64 `json:"net_http_baseline_rps_304"`
	AgentBigGBps    float64 `json:"agent_big_gbps"`
	NginxBigGBps    float64 `json:"nginx_big_gbps"`
	RatioBig        float64 `json:"ratio_big"`
	AgentRSSIdleMiB float64 `json:"agent_rss_idle_mib"`
	AgentRSSConnMiB float64 `json:"agent_rss_1000_conns_mib"`
	AgentRSSLoadMiB float64 `json:"agent_rss_after_load_mib"`
	NginxRSSConnMiB float64 `json:"nginx_rss_1000_conns_mib"`
	// Revalidations each on a new connection (Connection: close), as
	// endpoints polling less often than keep-alive lasts send them.
	AgentRPSFresh    float64 `json:"agent_rps_304_fresh"`
	NginxRPSFresh    float64 `json:"nginx_rps_304_fresh"`
	BaselineRPSFresh float64 `json:"net_http_baseline_rps_304_fresh"`
	// The same after revalidations (304) rather than downloads.
	AgentRSSRevalMiB float64 `json:"agent_rss_1000_revalidated_conns_mib"`
	NginxRSSRevalMiB float64 `json:"nginx_rss_1000_revalidated_conns_mib"`
	// An agent with the fast path off (serve.fast_path: false), same
	// run; zero if not measured.
	NoFastRPS304   float64 `json:"no_fast_path_rps_304,omitempty"`
	NoFastRPSFresh float64 `json:"no_fast_path_rps_304_fresh,omitempty"`
	NoFastBigGBps  float64 `json:"no_fast_path_big_gbps,omitempty"`
}

func main() {
	log.SetFlags(0)
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serve(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "baseline" {
		if err := baseline(); err != nil {
			log.Fatal(err)
		}
		return
	}
	var o options
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each wrk run")
	flag.IntVar(&o.Runs, "runs", 3, "wrk runs per server and test (the median is reported)")
	flag.IntVar(&o.Conns304, "conns-304", 512, "connections of the 304 test")
	flag.IntVar(&o.ConnsFresh, "conns-fresh", 64, "concurrent connections of the 304 test with a new connection per request")
	flag.IntVar(&o.ConnsBig, "conns-big", 8, "connections of the large-file test")
	flag.IntVar(&o.Idle, "idle-conns", 1000, "open connections for the memory measurement")
	flag.Int64Var(&o.BigSize, "size", 256<<20, "size of the large target in bytes")
	flag.StringVar(&o.JSON, "json", "", "also write the figures to this file")
	flag.BoolVar(&o.Keep, "keep", false, "keep the working directory")
	flag.StringVar(&o.Profile, "cpuprofile", "", "write a CPU profile of the agent process to this file")
	flag.BoolVar(&o.FastPathOff, "fast-path-off", true, "also measure an agent with the fast path off (serve.fast_path: false)")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	for _, tool := range []string{"wrk", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install -y wrk nginx): %w", tool, err)
		}
	}
	work, err := os.MkdirTemp("", "cascade-bench-agent-")
	if err != nil {
		return err
	}
	if !o.Keep {
		defer os.RemoveAll(work)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log.Printf("building a repository with a %d MiB target and an agent's served tree in %s", o.BigSize>>20, work)
	tree, err := setup(ctx, work, o.BigSize)
	if err != nil {
		return err
	}
	agentURL, agentProc, err := startAgent(ctx, tree, tree.state, o.Profile, false)
	if err != nil {
		return err
	}
	defer agentProc.stop()
	var offURL string
	if o.FastPathOff {
		// A second agent on the same tree, with a copy of the state.
		state := filepath.Join(work, "state-no-fast-path")
		if out, err := exec.Command("cp", "-a", tree.state, state).CombinedOutput(); err != nil {
			return fmt.Errorf("copy the agent's state: %w: %s", err, out)
		}
		var offProc *process
		if offURL, offProc, err = startAgent(ctx, tree, state, "", true); err != nil {
			return err
		}
		defer offProc.stop()
	}
	nginxURL, nginxProc, err := startNginx(ctx, work, tree.dir)
	if err != nil {
		return err
	}
	defer nginxProc.stop()
	baseURL, baseProc, err := startSelf(ctx, "baseline")
	if err != nil {
		return err
	}
	defer baseProc.stop()
	res, err := measure(ctx, o, tree, servers{agentURL, agentProc, nginxURL, nginxProc, baseURL, offURL})
	if err != nil {
		return err
	}
	report(res, o)
	if o.JSON != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		return os.WriteFile(o.JSON, append(b, '\n'), 0o644)
	}
	return nil
}

// servers are the processes under test.
type servers struct {
	agentURL string
	agent    *process
	nginxURL string
	nginx    *process
	baseURL  string // a net/http server answering every request 304
	offURL   string // the agent with the fast path off ("" if not measured)
}

// measure runs the memory measurement and the two wrk tests, servers
// alternating so that all see the same conditions.
func measure(ctx context.Context, o options, tree *servedTree, s servers) (*result, error) {
	agentURL, agent, nginxURL, nginx := s.agentURL, s.agent, s.nginxURL, s.nginx
	res := &result{CPUs: runtime.NumCPU()}
	var err error
	if res.AgentRSSIdleMiB, err = agent.rssMiB(); err != nil {
		return nil, err
	}
	agentTag, err := checkNotModified(ctx, agentURL+tree.timestamp)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	nginxTag, err := checkNotModified(ctx, nginxURL+tree.timestamp)
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	log.Printf("agent RSS idle: %.1f MiB; opening %d connections", res.AgentRSSIdleMiB, o.Idle)
	// Revalidated connections first: the download measurement's larger
	// heap would otherwise still be resident.
	for _, m := range []struct {
		p         *process
		url, etag string
		into      *float64
	}{
		{agent, agentURL, agentTag, &res.AgentRSSRevalMiB},
		{nginx, nginxURL, nginxTag, &res.NginxRSSRevalMiB},
		{agent, agentURL, "", &res.AgentRSSConnMiB},
		{nginx, nginxURL, "", &res.NginxRSSConnMiB},
	} {
		if *m.into, err = rssWithConns(ctx, m.p, m.url+tree.timestamp, m.etag, o.Idle); err != nil {
			return nil, err
		}
	}
	offTag := ""
	if s.offURL != "" {
		if offTag, err = checkNotModified(ctx, s.offURL+tree.timestamp); err != nil {
			return nil, fmt.Errorf("agent without the fast path: %w", err)
		}
	}
	var a304, n304, b304, aFresh, nFresh, bFresh, aBig, nBig, o304, oFresh, oBig []float64
	for i := range o.Runs {
		log.Printf("run %d/%d", i+1, o.Runs)
		steps := []struct {
			url, etag string
			fresh     bool
			conns     int
			into      *[]float64
			big       bool
		}{
			{agentURL + tree.timestamp, agentTag, false, o.Conns304, &a304, false},
			{nginxURL + tree.timestamp, nginxTag, false, o.Conns304, &n304, false},
			{s.baseURL + tree.timestamp, `"baseline"`, false, o.Conns304, &b304, false},
			{agentURL + tree.timestamp, agentTag, true, o.ConnsFresh, &aFresh, false},
			{nginxURL + tree.timestamp, nginxTag, true, o.ConnsFresh, &nFresh, false},
			{s.baseURL + tree.timestamp, `"baseline"`, true, o.ConnsFresh, &bFresh, false},
			{agentURL + tree.big, "", false, o.ConnsBig, &aBig, true},
			{nginxURL + tree.big, "", false, o.ConnsBig, &nBig, true},
		}
		if s.offURL != "" {
			steps = append(steps, []struct {
				url, etag string
				fresh     bool
				conns     int
				into      *[]float64
				big       bool
			}{
				{s.offURL + tree.timestamp, offTag, false, o.Conns304, &o304, false},
				{s.offURL + tree.timestamp, offTag, true, o.ConnsFresh, &oFresh, false},
				{s.offURL + tree.big, "", false, o.ConnsBig, &oBig, true},
			}...)
		}
		for _, s := range steps {
			w, err := runWrk(ctx, s.url, s.etag, s.fresh, s.conns, o.Duration)
			if err != nil {
				return nil, err
			}
			v := w.rps
			if s.big {
				v = w.bytesPerSec / 1e9
			}
			*s.into = append(*s.into, v)
		}
	}
	res.AgentRPS304, res.NginxRPS304, res.BaselineRPS304 = median(a304), median(n304), median(b304)
	res.AgentRPSFresh, res.NginxRPSFresh, res.BaselineRPSFresh = median(aFresh), median(nFresh), median(bFresh)
	res.AgentBigGBps, res.NginxBigGBps = median(aBig), median(nBig)
	res.Ratio304, res.RatioBig = res.AgentRPS304/res.NginxRPS304, res.AgentBigGBps/res.NginxBigGBps
	if s.offURL != "" {
		res.NoFastRPS304, res.NoFastRPSFresh, res.NoFastBigGBps = median(o304), median(oFresh), median(oBig)
	}
	if res.AgentRSSLoadMiB, err = agent.rssMiB(); err != nil {
		return nil, err
	}
	return res, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(r *result, o options) {
	fmt.Printf("\nupdate agent vs nginx, %d CPUs, wrk %s per run, median of %d runs\n\n", r.CPUs, o.Duration, o.Runs)
	fmt.Printf("%-44s %14s %14s %8s\n", "test", "agent", "nginx", "ratio")
	fmt.Printf("%-44s %14.0f %14.0f %7.2fx\n", fmt.Sprintf("304 timestamp.json, %d conns (req/s)", o.Conns304), r.AgentRPS304, r.NginxRPS304, r.Ratio304)
	fmt.Printf("%-44s %14.0f %14.0f %7.2fx\n", fmt.Sprintf("304 on new connections, %d at once (req/s)", o.ConnsFresh),
		r.AgentRPSFresh, r.NginxRPSFresh, r.AgentRPSFresh/r.NginxRPSFresh)
	fmt.Printf("%-44s %14.2f %14.2f %7.2fx\n", fmt.Sprintf("%d MiB target, %d conns (GB/s)", o.BigSize>>20, o.ConnsBig), r.AgentBigGBps, r.NginxBigGBps, r.RatioBig)
	if r.NoFastRPS304 > 0 {
		fmt.Printf("%-44s %14.0f %14.0f %7.2fx\n", "fast path off: 304, keep-alive (req/s)", r.NoFastRPS304, r.NginxRPS304, r.NoFastRPS304/r.NginxRPS304)
		fmt.Printf("%-44s %14.0f %14.0f %7.2fx\n", "fast path off: 304, new connections (req/s)", r.NoFastRPSFresh, r.NginxRPSFresh, r.NoFastRPSFresh/r.NginxRPSFresh)
		fmt.Printf("%-44s %14.2f %14.2f %7.2fx\n", "fast path off: large target (GB/s)", r.NoFastBigGBps, r.NginxBigGBps, r.NoFastBigGBps/r.NginxBigGBps)
	}
	fmt.Printf("\nbaseline: a net/http handler that answers every request 304 at once: %.0f req/s (%.2fx nginx);\n"+
		"the agent reaches %.2f of it; on new connections: %.0f req/s (%.2fx nginx)\n", r.BaselineRPS304, r.BaselineRPS304/r.NginxRPS304,
		r.AgentRPS304/r.BaselineRPS304, r.BaselineRPSFresh, r.BaselineRPSFresh/r.NginxRPSFresh)
	fmt.Printf("\nagent RSS: %.1f MiB idle; with %d open connections: %.1f MiB after revalidations, %.1f MiB after downloads; %.1f MiB after the load tests\n",
		r.AgentRSSIdleMiB, o.Idle, r.AgentRSSRevalMiB, r.AgentRSSConnMiB, r.AgentRSSLoadMiB)
	fmt.Printf("nginx RSS (master and workers) with %d open connections: %.1f MiB after revalidations, %.1f MiB after downloads\n",
		o.Idle, r.NginxRSSRevalMiB, r.NginxRSSConnMiB)
	fmt.Printf("targets: >= 0.90x on the large target (%s), >= 0.80x on 304s (%s)\n", verdict(r.RatioBig, 0.9), verdict(r.Ratio304, 0.8))
}

func verdict(ratio, target float64) string {
	if ratio >= target {
		return "met"
	}
	return "MISSED"
}

// abs returns an absolute path (the served tree is passed to processes).
func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
