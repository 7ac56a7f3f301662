// Command console benchmarks the web console's pages with a large
// registry: 100,000 endpoints (100 of them update agents, each named by a
// policy entry) and the last report of 95% of them, on SQLite and on
// PostgreSQL. For the dashboard and for pages of the endpoint list with
// several filters and sorts it measures the server's time per page (the
// real handler of `cascade server run` with a signed-in session, in
// process: from the request to the last byte of the answer) at p50 and
// p99, and, as the baseline of the same run, the time of the bare SQL the
// page needs, run directly on the same database. Usage:
//
//	go run ./bench/console [-endpoints 100000] [-requests 200] [-postgres DSN] [-json FILE]
//
// -postgres defaults to $CASCADE_TEST_POSTGRES; without one the
// PostgreSQL figures are skipped with a note. The run gets a new SQLite
// file and a new schema in the PostgreSQL database, removed at the end.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
)

// options are the flags.
type options struct {
	Endpoints int
	Requests  int
	Min       int
	Budget    time.Duration
	Postgres  string
	JSON      string
	Only      string
	Profile   string
}

// figures are the -json output.
type figures struct {
	Endpoints int         `json:"endpoints"`
	Reports   int         `json:"reports"`
	Requests  int         `json:"requests"`
	Databases []dbFigures `json:"databases"`
	// PostgresNote says why PostgreSQL was not measured ("" when it was).
	PostgresNote string `json:"postgres_note,omitempty"`
}

// dbFigures are one database's figures.
type dbFigures struct {
	Database string        `json:"database"`
	LoadS    float64       `json:"load_s"` // time to load the registry
	Pages    []pageFigures `json:"pages"`
}

// pageFigures are one page's server times and its baseline's.
type pageFigures struct {
	Name        string  `json:"name"`
	Path        string  `json:"path"`
	Baseline    string  `json:"baseline"` // what the bare SQL is
	Samples     int     `json:"samples"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	Bytes       int     `json:"bytes"`
	BaseSamples int     `json:"baseline_samples"`
	BaseP50MS   float64 `json:"baseline_p50_ms"`
	BaseP99MS   float64 `json:"baseline_p99_ms"`
	Error       string  `json:"error,omitempty"`
}

func main() {
	var o options
	flag.IntVar(&o.Endpoints, "endpoints", 100000, "endpoints in the registry")
	flag.IntVar(&o.Requests, "requests", 200, "requests measured per page (fewer when -budget runs out first)")
	flag.IntVar(&o.Min, "min", 10, "requests measured per page at least, whatever -budget says")
	flag.DurationVar(&o.Budget, "budget", 30*time.Second, "time budget per page and per baseline")
	flag.StringVar(&o.Postgres, "postgres", os.Getenv("CASCADE_TEST_POSTGRES"), "PostgreSQL DSN (default $CASCADE_TEST_POSTGRES; empty: SQLite only)")
	flag.StringVar(&o.JSON, "json", "", "also write the figures to this file")
	flag.StringVar(&o.Only, "only", "", "measure only the pages whose name contains this")
	flag.StringVar(&o.Profile, "cpuprofile", "", "write a CPU profile of the page requests (not the baselines) to this file")
	flag.Parse()
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := figures{Endpoints: o.Endpoints, Requests: o.Requests}
	dbs := []string{""}
	if o.Postgres != "" {
		dbs = append(dbs, o.Postgres)
	} else {
		f.PostgresNote = "not measured: no PostgreSQL (-postgres or CASCADE_TEST_POSTGRES)"
		log.Printf("PostgreSQL %s", f.PostgresNote)
	}
	for _, pg := range dbs {
		d, reports, err := measure(ctx, o, pg)
		if err != nil {
			log.Fatalf("bench/console: %s: %v", d.Database, err)
		}
		f.Reports = reports
		f.Databases = append(f.Databases, d)
	}
	printFigures(os.Stdout, f)
	if o.JSON != "" {
		b, _ := json.MarshalIndent(f, "", "  ")
		if err := atomicfile.WriteFile(o.JSON, b, 0o644); err != nil {
			log.Fatalf("bench/console: %v", err)
		}
	}
}

// printFigures writes a table of f for people.
func printFigures(w *os.File, f figures) {
	fmt.Fprintf(w, "%d endpoints, %d last reports\n", f.Endpoints, f.Reports)
	for _, d := range f.Databases {
		fmt.Fprintf(w, "\n%s (registry loaded in %.1f s)\n", d.Database, d.LoadS)
		fmt.Fprintf(w, "%-40s %8s %9s %9s %9s %9s %8s\n", "page", "samples", "p50 ms", "p99 ms", "SQL p50", "SQL p99", "KB")
		for _, p := range d.Pages {
			if p.Error != "" {
				fmt.Fprintf(w, "%-40s failed: %s\n", p.Name, p.Error)
				continue
			}
			fmt.Fprintf(w, "%-40s %8d %9.1f %9.1f %9.1f %9.1f %8.1f\n", p.Name, p.Samples, p.P50MS, p.P99MS,
				p.BaseP50MS, p.BaseP99MS, float64(p.Bytes)/1000)
		}
	}
	if f.PostgresNote != "" {
		fmt.Fprintf(w, "\nPostgreSQL %s\n", f.PostgresNote)
	}
}
