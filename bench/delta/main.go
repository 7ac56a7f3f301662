// Command delta benchmarks cascade's delta format (internal/delta)
// against the zstd command line tool with --patch-from, xdelta3 and
// bsdiff, and against klauspost/compress's zstd with the base as a raw
// dictionary (the pure-Go way to do what `zstd --patch-from` does), on the
// same inputs in the same run:
//
//   - (a) a 64 MiB pattern-like file of signature records and its next
//     version with 0.5% of the records deleted, modified or appended;
//   - (b) the same at 150 MiB;
//   - (c) two builds of cmd/cascade (a few changed lines, another version
//     string), stripped (-s -w) as programs are often shipped, and with Go's
//     default flags (compressed DWARF).
//
// For each it measures the delta's size, the time and peak memory (peak
// RSS of the process, from rusage) of creating it and of applying it, and
// checks that the applied result equals the new file. Every create and
// apply runs in its own process: this program re-executed (for cascade's
// format and klauspost's zstd) or the tool. The tools come from Debian:
//
//	apt-get install -y zstd xdelta3 bsdiff
//
// CASCADE_BENCH_DELTA_CPUPROFILE=FILE writes CPU profiles of the children
// (FILE.create, FILE.apply, ...). Usage (from the repository's root):
//
//	go run ./bench/delta [-sizes 64,150] [-program=true] [-tools cascade,zstd] [-json FILE] [-keep]
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// row is one tool on one input.
type row struct {
	Input      string  `json:"input"`
	Tool       string  `json:"tool"`
	BaseBytes  int64   `json:"base_bytes"`
	NewBytes   int64   `json:"new_bytes"`
	DeltaBytes int64   `json:"delta_bytes"`
	CreateSec  float64 `json:"create_s"`
	CreateMiB  float64 `json:"create_peak_rss_mib"`
	ApplySec   float64 `json:"apply_s"`
	ApplyMiB   float64 `json:"apply_peak_rss_mib"`
	// Error says why the tool has no figures (missing, failed, wrong
	// result).
	Error string `json:"error,omitempty"`
}

// result is what the benchmark writes with -json.
type result struct {
	CPUs   int               `json:"cpus"`
	Inputs map[string]string `json:"inputs"`
	Rows   []row             `json:"rows"`
}

func main() {
	log.SetFlags(0)
	if len(os.Args) > 1 {
		if run, ok := children[os.Args[1]]; ok {
			stop := profile(os.Getenv("CASCADE_BENCH_DELTA_CPUPROFILE"))
			err := run(os.Args[2:])
			stop()
			if err != nil {
				log.Fatalf("bench/delta %s: %v", os.Args[1], err)
			}
			return
		}
	}
	sizes := flag.String("sizes", "64,150", "sizes in MiB of the pattern-like inputs, comma-separated")
	program := flag.Bool("program", true, "also measure two builds of cmd/cascade")
	jsonOut := flag.String("json", "", "write the figures as JSON to this file")
	keep := flag.Bool("keep", false, "keep the work directory")
	only := flag.String("tools", "", "comma-separated tools to measure, by the start of their name (default: all)")
	timeout := flag.Duration("timeout", 20*time.Minute, "the longest one create or apply may take")
	flag.Parse()
	dir, err := os.MkdirTemp("", "cascade-bench-delta-")
	if err != nil {
		log.Fatal(err)
	}
	if *keep {
		log.Printf("work directory: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if missing := missingTools(); len(missing) > 0 {
		log.Printf("missing %s: apt-get install -y zstd xdelta3 bsdiff (their rows say so)", strings.Join(missing, ", "))
	}
	res := result{CPUs: runtime.NumCPU(), Inputs: map[string]string{}}
	var inputs []func() (input, error)
	for i, s := range strings.Split(*sizes, ",") {
		mib, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || mib <= 0 {
			log.Fatalf("bench/delta: bad -sizes %q", *sizes)
		}
		inputs = append(inputs, func() (input, error) {
			return patternFiles(dir, fmt.Sprintf("pattern-%dMiB", mib), int64(mib)<<20, uint64(i+1))
		})
	}
	if *program {
		inputs = append(inputs,
			func() (input, error) { return programFiles(dir, true) },
			func() (input, error) { return programFiles(dir, false) })
	}
	for _, make := range inputs {
		in, err := make()
		if err != nil {
			log.Fatalf("bench/delta: input: %v", err)
		}
		res.Inputs[in.Name] = in.Desc
		log.Printf("== %s: %s", in.Name, in.Desc)
		for _, t := range tools() {
			if !selected(t.name, *only) {
				continue
			}
			r := measure(dir, in, t, *timeout)
			res.Rows = append(res.Rows, r)
			if r.Error != "" {
				log.Printf("   %-22s %s", t.name, r.Error)
				continue
			}
			log.Printf("   %-22s delta %10d B (%.3f%% of new)  create %7.2fs %7.1f MiB  apply %6.3fs %7.1f MiB",
				t.name, r.DeltaBytes, 100*float64(r.DeltaBytes)/float64(max(r.NewBytes, 1)), r.CreateSec, r.CreateMiB, r.ApplySec, r.ApplyMiB)
		}
		if !*keep {
			os.Remove(in.Base)
			os.Remove(in.New)
		}
	}
	printTable(os.Stdout, res)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// profile writes a CPU profile of a child to file ("" for none); the
// returned function stops it.
func profile(file string) func() {
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file + "." + os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// selected reports whether the tool named name is in the -tools list.
func selected(name, only string) bool {
	if only == "" {
		return true
	}
	for _, o := range strings.Split(only, ",") {
		if o = strings.TrimSpace(o); o != "" && strings.HasPrefix(name, o) {
			return true
		}
	}
	return false
}

// applyRuns is how many times each delta is applied.
const applyRuns = 3

// measure creates and applies one delta with t, checking the result.
func measure(dir string, in input, t tool, timeout time.Duration) row {
	r := row{Input: in.Name, Tool: t.name}
	r.BaseBytes, r.NewBytes = size(in.Base), size(in.New)
	for _, bin := range t.needs {
		if _, err := exec.LookPath(bin); err != nil {
			r.Error = fmt.Sprintf("not measured: %s is missing (apt-get install -y zstd xdelta3 bsdiff)", bin)
			return r
		}
	}
	delta := dir + "/" + in.Name + "." + t.ext
	out := dir + "/" + in.Name + ".out"
	defer os.Remove(out)
	var err error
	if r.CreateSec, r.CreateMiB, err = run(timeout, t.create(in.Base, in.New, delta)); err != nil {
		r.Error = "create failed: " + err.Error()
		return r
	}
	r.DeltaBytes = size(delta)
	// Applying is short and the machine noisy: the median of applyRuns
	// runs, the largest peak RSS.
	var times []float64
	for range applyRuns {
		sec, mib, err := run(timeout, t.apply(in.Base, delta, out, r.NewBytes))
		if err != nil {
			r.Error = "apply failed: " + err.Error()
			return r
		}
		times = append(times, sec)
		r.ApplyMiB = max(r.ApplyMiB, mib)
	}
	slices.Sort(times)
	r.ApplySec = times[len(times)/2]
	if same, err := sameFile(out, in.New); err != nil || !same {
		r.Error = fmt.Sprintf("the applied result differs from the new file (%v)", err)
	}
	return r
}

// run runs cmd and returns its wall time and peak RSS. It first writes
// back the dirty pages of earlier steps, so that no tool pays for another's
// writes.
func run(timeout time.Duration, cmd *exec.Cmd) (float64, float64, error) {
	syncDisks()
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	elapsed := time.Since(start).Seconds()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 300 {
			msg = msg[:300]
		}
		if elapsed >= timeout.Seconds() {
			return 0, 0, fmt.Errorf("took more than %s", timeout)
		}
		return 0, 0, fmt.Errorf("%s: %w: %s", cmd.Args[0], err, msg)
	}
	rss, err := peakRSS(cmd.ProcessState)
	if err != nil {
		return 0, 0, err
	}
	return elapsed, rss, nil
}

func size(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// sameFile compares two files by SHA-256.
func sameFile(a, b string) (bool, error) {
	var sums [2][32]byte
	for i, name := range []string{a, b} {
		f, err := os.Open(name)
		if err != nil {
			return false, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return false, err
		}
		copy(sums[i][:], h.Sum(nil))
	}
	return sums[0] == sums[1], nil
}

// printTable prints the figures with the ratios against the zstd tool.
func printTable(w io.Writer, res result) {
	fmt.Fprintf(w, "\n%-16s %-24s %12s %9s %10s %10s %9s %10s\n", "input", "tool", "delta bytes", "vs zstd", "create s", "create MiB", "apply s", "apply MiB")
	for _, r := range res.Rows {
		if r.Error != "" {
			fmt.Fprintf(w, "%-16s %-24s %s\n", r.Input, r.Tool, r.Error)
			continue
		}
		ratio := "n/a"
		for _, z := range res.Rows {
			if z.Input == r.Input && z.Tool == zstdTool && z.Error == "" && z.DeltaBytes > 0 {
				ratio = fmt.Sprintf("%.2f", float64(r.DeltaBytes)/float64(z.DeltaBytes))
			}
		}
		fmt.Fprintf(w, "%-16s %-24s %12d %9s %10.2f %10.1f %9.3f %10.1f\n", r.Input, r.Tool, r.DeltaBytes, ratio, r.CreateSec, r.CreateMiB, r.ApplySec, r.ApplyMiB)
	}
}
