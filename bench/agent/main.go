// Command agent benchmarks an update agent (internal/agent) against nginx
// serving the same files, side by side in one run, with wrk:
//
//   - requests/s of conditional GETs of timestamp.json answered 304, at
//     512 connections;
//   - GB/s of a 256 MiB target with 8 connections;
//   - the agent's resident memory idle and with 1,000 open connections
//     (nginx's, master and workers, alongside).
//
// It builds a vendor repository with the target, fills an agent's served
// tree from it with a real refresh (verified), runs the agent in its own
// process (this program, re-executed with "serve") and nginx on the same
// directory, and prints the figures and the ratios. Needs wrk and nginx
// (apt-get install -y wrk nginx). Usage:
//
//	go run ./bench/agent [-duration 10s] [-runs 3] [-json FILE] [-cpuprofile FILE]
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
	ConnsBig int
	Idle     int
	BigSize  int64
	JSON     string
	Keep     bool
	Profile  string
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
	flag.IntVar(&o.ConnsBig, "conns-big", 8, "connections of the large-file test")
	flag.IntVar(&o.Idle, "idle-conns", 1000, "open connections for the memory measurement")
	flag.Int64Var(&o.BigSize, "size", 256<<20, "size of the large target in bytes")
	flag.StringVar(&o.JSON, "json", "", "also write the figures to this file")
	flag.BoolVar(&o.Keep, "keep", false, "keep the working directory")
	flag.StringVar(&o.Profile, "cpuprofile", "", "write a CPU profile of the agent process to this file")
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
	agentURL, agentProc, err := startAgent(ctx, work, tree, o.Profile)
	if err != nil {
		return err
	}
	defer agentProc.stop()
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
	res, err := measure(ctx, o, tree, servers{agentURL, agentProc, nginxURL, nginxProc, baseURL})
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
	log.Printf("agent RSS idle: %.1f MiB; opening %d connections", res.AgentRSSIdleMiB, o.Idle)
	if res.AgentRSSConnMiB, err = rssWithConns(ctx, agent, agentURL+tree.timestamp, o.Idle); err != nil {
		return nil, err
	}
	if res.NginxRSSConnMiB, err = rssWithConns(ctx, nginx, nginxURL+tree.timestamp, o.Idle); err != nil {
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
	var a304, n304, b304, aBig, nBig []float64
	for i := range o.Runs {
		log.Printf("run %d/%d", i+1, o.Runs)
		steps := []struct {
			url, etag string
			conns     int
			into      *[]float64
			big       bool
		}{
			{agentURL + tree.timestamp, agentTag, o.Conns304, &a304, false},
			{nginxURL + tree.timestamp, nginxTag, o.Conns304, &n304, false},
			{s.baseURL + tree.timestamp, `"baseline"`, o.Conns304, &b304, false},
			{agentURL + tree.big, "", o.ConnsBig, &aBig, true},
			{nginxURL + tree.big, "", o.ConnsBig, &nBig, true},
		}
		for _, s := range steps {
			w, err := runWrk(ctx, s.url, s.etag, s.conns, o.Duration)
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
	res.AgentBigGBps, res.NginxBigGBps = median(aBig), median(nBig)
	res.Ratio304, res.RatioBig = res.AgentRPS304/res.NginxRPS304, res.AgentBigGBps/res.NginxBigGBps
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
	fmt.Printf("%-44s %14.2f %14.2f %7.2fx\n", fmt.Sprintf("%d MiB target, %d conns (GB/s)", o.BigSize>>20, o.ConnsBig), r.AgentBigGBps, r.NginxBigGBps, r.RatioBig)
	fmt.Printf("\nbaseline: a net/http handler that answers every request 304 at once: %.0f req/s (%.2fx nginx);\n"+
		"the agent reaches %.2f of it\n", r.BaselineRPS304, r.BaselineRPS304/r.NginxRPS304, r.AgentRPS304/r.BaselineRPS304)
	fmt.Printf("\nagent RSS: %.1f MiB idle, %.1f MiB with %d open connections, %.1f MiB after the load tests\n",
		r.AgentRSSIdleMiB, r.AgentRSSConnMiB, o.Idle, r.AgentRSSLoadMiB)
	fmt.Printf("nginx RSS (master and workers): %.1f MiB with %d open connections\n", r.NginxRSSConnMiB, o.Idle)
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
