// Command takeover benchmarks the writer takeover of several server
// processes on one PostgreSQL database (docs/server.md, "Several server
// processes"): two real `cascade server run` processes (the second made
// by `cascade server join`); the writer is SIGKILLed, and the time is
// measured from the kill until the database holds the next site version,
// signed by the other process. The kill comes a random time (up to one
// writer_poll) after the other process is ready, so at a random point of
// its poll for the writer's lock. The killed process is then started
// again (it follows), and the next round kills the new writer. Median,
// minimum and maximum of the rounds, for each writer_poll asked for.
//
// The baseline, same run and same processes: the time from an admin
// change (a component hold or release, sent to the writer) until the
// database holds the version it signs for it, when nothing fails.
//
//	go run ./bench/takeover -database postgres://... [-rounds 10] [-polls 2s,500ms] [-json FILE]
//
// Each writer_poll gets a new schema in that database, dropped at the end.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cascade-update/cascade/bench/internal/benchdb"
	"github.com/cascade-update/cascade/bench/internal/cluster"
	"github.com/cascade-update/cascade/bench/internal/loadavg"
	"github.com/cascade-update/cascade/internal/server/api"
)

// result is one writer_poll's figures, in milliseconds.
type result struct {
	WriterPoll string    `json:"writer_poll"`
	Rounds     int       `json:"rounds"`
	MedianMS   float64   `json:"median_ms"`
	MinMS      float64   `json:"min_ms"`
	MaxMS      float64   `json:"max_ms"`
	TakeoverMS []float64 `json:"takeover_ms"`
	// The baseline: an admin change until its version, nothing failing.
	SignMedianMS float64   `json:"sign_median_ms"`
	SignMS       []float64 `json:"sign_ms"`
}

type output struct {
	CPUs    int      `json:"cpus"`
	Load    string   `json:"load"`
	Results []result `json:"results"`
}

// dbPoll is how often the benchmark reads the newest version.
const dbPoll = 5 * time.Millisecond

func main() {
	database := flag.String("database", os.Getenv("CASCADE_TEST_POSTGRES"), "PostgreSQL database URL")
	rounds := flag.Int("rounds", 10, "takeovers (and baseline signings) per writer_poll")
	polls := flag.String("polls", "2s,500ms", "writer_poll values, comma-separated")
	jsonOut := flag.String("json", "", "write the figures to this file")
	flag.Parse()
	log.SetFlags(0)
	if *database == "" {
		log.Fatal("takeover needs a PostgreSQL database: -database or CASCADE_TEST_POSTGRES")
	}
	out := output{CPUs: runtime.NumCPU()}
	ctx := context.Background()
	for _, p := range strings.Split(*polls, ",") {
		poll, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			log.Fatalf("-polls: %v", err)
		}
		r, err := measure(ctx, *database, poll, *rounds)
		if err != nil {
			log.Fatalf("writer_poll %s: %v", poll, err)
		}
		out.Results = append(out.Results, *r)
	}
	out.Load = loadavg.Read()
	fmt.Printf("\n%d CPUs, load average %s\n%-12s %10s %10s %10s %22s %8s\n", out.CPUs, out.Load,
		"writer_poll", "median", "min", "max", "baseline: sign median", "ratio")
	for _, r := range out.Results {
		fmt.Printf("%-12s %7.0f ms %7.0f ms %7.0f ms %19.0f ms %7.1fx\n", r.WriterPoll, r.MedianMS, r.MinMS, r.MaxMS,
			r.SignMedianMS, r.MedianMS/r.SignMedianMS)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// measure sets up two server processes with writer_poll poll in a new
// schema and measures rounds signings and rounds takeovers.
func measure(ctx context.Context, database string, poll time.Duration, rounds int) (*result, error) {
	dsn, cleanup, err := benchdb.New(ctx, database, "bench_takeover_")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	c, err := cluster.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	tune := func(cfg map[string]any) { cfg["writer_poll"] = poll.String() }
	a, err := c.StartWriter(ctx, tune)
	if err != nil {
		return nil, err
	}
	b, err := c.Add(ctx, tune)
	if err != nil {
		return nil, err
	}
	if err := b.StartFollower(ctx); err != nil {
		return nil, err
	}
	pgStarted, err := c.Started(ctx)
	if err != nil {
		return nil, err
	}
	r := &result{WriterPoll: poll.String(), Rounds: rounds}
	log.Printf("writer_poll %s: %d signings by the writer (the baseline)", poll, rounds)
	for i := range rounds {
		d, err := sign(ctx, c, a, i%2 == 0)
		if err != nil {
			return nil, fmt.Errorf("signing %d: %w", i+1, err)
		}
		r.SignMS = append(r.SignMS, ms(d))
		log.Printf("  signing %d: %s", i+1, d.Round(time.Millisecond))
	}
	log.Printf("writer_poll %s: %d takeovers", poll, rounds)
	writer, follower := a, b
	for i := range rounds {
		// A crash comes at no particular point of the follower's poll:
		// wait up to one writer_poll after it is ready (it tried for the
		// lock as it started).
		time.Sleep(rand.N(poll))
		d, err := takeover(ctx, c, writer, follower)
		if err != nil {
			return nil, fmt.Errorf("takeover %d: %w", i+1, err)
		}
		r.TakeoverMS = append(r.TakeoverMS, ms(d))
		log.Printf("  takeover %d (%s by %s): %s", i+1, writer.Name, follower.Name, d.Round(time.Millisecond))
		// The killed process comes back and follows.
		if err := writer.Start(ctx); err != nil {
			return nil, err
		}
		if err := writer.WaitFor(ctx, time.Minute, "the restarted server to follow", func(st api.Status) bool { return !st.Writer }); err != nil {
			return nil, err
		}
		writer, follower = follower, writer
	}
	if err := c.Restarted(ctx, pgStarted); err != nil {
		return nil, err
	}
	r.MedianMS, r.MinMS, r.MaxMS = median(r.TakeoverMS), slices.Min(r.TakeoverMS), slices.Max(r.TakeoverMS)
	r.SignMedianMS = median(r.SignMS)
	return r, nil
}

// sign holds (or releases) the component through the writer's API and
// returns the time until the database holds the version signed for it.
func sign(ctx context.Context, c *cluster.Cluster, writer *cluster.Server, hold bool) (time.Duration, error) {
	v0, _, err := c.NewestVersion(ctx)
	if err != nil {
		return 0, err
	}
	op := "release"
	if hold {
		op = "hold"
	}
	start := time.Now()
	if err := writer.API.Call(ctx, http.MethodPost, "/api/v1/content/components/pattern/"+op, nil, nil, nil); err != nil {
		return 0, fmt.Errorf("%s the component: %w", op, err)
	}
	_, w, seen, err := c.WaitVersion(ctx, v0, dbPoll, time.Minute)
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(w, writer.URL) {
		return 0, fmt.Errorf("the version after the %s was signed by %q, not the writer %s", op, w, writer.URL)
	}
	return seen.Sub(start), nil
}

// takeover SIGKILLs the writer and returns the time until the database
// holds a version signed by the follower.
func takeover(ctx context.Context, c *cluster.Cluster, writer, follower *cluster.Server) (time.Duration, error) {
	v0, w0, err := c.NewestVersion(ctx)
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(w0, writer.URL) {
		return 0, fmt.Errorf("the newest version %d was signed by %q, not the writer %s", v0, w0, writer.URL)
	}
	start := time.Now()
	writer.Kill(syscall.SIGKILL)
	_, w, seen, err := c.WaitVersion(ctx, v0, dbPoll, time.Minute)
	if err != nil {
		return 0, errors.Join(err, fmt.Errorf("%s's output:\n%s", follower.Name, tail(follower.Output())))
	}
	if !strings.HasPrefix(w, follower.URL) {
		return 0, fmt.Errorf("the version after the kill was signed by %q, not %s", w, follower.URL)
	}
	return seen.Sub(start), nil
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
