// Command notify benchmarks the notification hub (internal/notify/hub) with
// real Server-Sent Events streams on loopback: the time from Notify until
// every one of 10,000 connected endpoints has received the notification,
// update agents first (50 agents that report done as soon as they get
// it, which releases the 9,950 clients), and the server's memory with
// 10,000 streams open. The same endpoints are then notified by a bare
// SSE broadcaster (no store, no agents first; baseline.go) in another
// server process: the baseline of the time and memory ratios.
//
// The server (store, hub, HTTP server) runs in its own process (this
// program re-executed with -serve) so that its memory is measured alone;
// the endpoints are listen.Run instances in this process, dialling
// from several 127.0.0.x source addresses so that no address runs out of
// ephemeral ports. Both processes raise RLIMIT_NOFILE. Usage:
//
//	go run ./bench/notify [-endpoints 10000] [-agents 50] [-rounds 3] [-tls] [-database postgres://...] [-json FILE]
//
// With -database the run gets a new schema in that PostgreSQL database,
// dropped at the end.
//
// With -processes N (PostgreSQL only) the endpoints are set up once and
// measured twice in the same run: against one hub process, then split
// across N hub processes sharing the database (notifications made on the
// first, each agent reporting to the process it is connected to; the
// processes learn of each other through the store's signals): the
// several-processes figures against the one-process baseline.
//
//	go run ./bench/notify -processes 2 -database postgres://... [-endpoints 18000] [-agents 500]
//
// With -streams-per-conn N the server is HTTPS with HTTP/2 and the
// endpoints' streams share connections, up to N on each (the server's
// MaxConcurrentStreams, set for the benchmark's server only): a process
// then needs a file descriptor per N streams, not per stream, which lets
// 100,000 endpoints run under an open-file limit of 20,000.
//
//	go run ./bench/notify -processes 2 -endpoints 100000 -agents 500 -streams-per-conn 250 -database postgres://...
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/cascade-update/cascade/bench/internal/rlimit"
)

// options are the flags.
type options struct {
	Endpoints    int
	Agents       int
	Rounds       int
	Sources      int
	TLS          bool
	Database     string
	AgentTimeout time.Duration
	JSON         string
	Serve        bool
	Baseline     bool
	Processes    int
	Join         string
	// StreamsPerConn above 0: HTTPS with HTTP/2, up to this many event
	// streams on a connection; 0: a connection per stream.
	StreamsPerConn int
	// ConnectRate is how many endpoints open their streams per second.
	ConnectRate int
}

func main() {
	var o options
	flag.IntVar(&o.Endpoints, "endpoints", 10000, "connected endpoints")
	flag.IntVar(&o.Agents, "agents", 50, "of which update agents")
	flag.IntVar(&o.Rounds, "rounds", 3, "notifications measured")
	flag.IntVar(&o.Sources, "sources", 8, "loopback source addresses (127.0.0.2 and up)")
	flag.BoolVar(&o.TLS, "tls", false, "serve HTTPS (HTTP/1.1, a connection per stream)")
	flag.StringVar(&o.Database, "database", "", "PostgreSQL DSN (default: a new SQLite file)")
	flag.DurationVar(&o.AgentTimeout, "agent-timeout", time.Minute, "the hub's agent timeout")
	flag.StringVar(&o.JSON, "json", "", "also write the figures to this file")
	flag.BoolVar(&o.Serve, "serve", false, "internal: be the server process")
	flag.BoolVar(&o.Baseline, "baseline", false, "internal: with -serve, be the bare broadcaster")
	flag.IntVar(&o.Processes, "processes", 1, "hub processes sharing the PostgreSQL database (-database); "+
		"above 1, compared with one process on the same endpoints instead of the bare broadcaster")
	flag.IntVar(&o.ConnectRate, "connect-rate", 25000, "endpoints opening their streams per second "+
		"(each stream's first read of its pending notifications must finish within the hub's store timeout)")
	flag.IntVar(&o.StreamsPerConn, "streams-per-conn", 0, "above 0: HTTPS with HTTP/2, up to this many event streams sharing a connection "+
		"(the server's MaxConcurrentStreams; needed above the open-file limit); 0: a connection per stream")
	flag.StringVar(&o.Join, "join", "", "internal: with -serve, the DSN of a database set up by the driver")
	flag.Parse()
	if o.ConnectRate < 1 {
		fmt.Fprintln(os.Stderr, "bench/notify: -connect-rate must be at least 1")
		os.Exit(2)
	}
	if o.StreamsPerConn < 0 {
		fmt.Fprintln(os.Stderr, "bench/notify: -streams-per-conn must be 0 or more")
		os.Exit(2)
	}
	if err := rlimit.RaiseFiles(filesNeeded(o)); err != nil {
		log.Fatalf("raise the open-file limit: %v", err)
	}
	var err error
	switch {
	case o.Serve:
		err = serve(o)
	case o.Processes > 1:
		err = driveProcesses(o)
	default:
		err = drive(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/notify:", err)
		os.Exit(1)
	}
}

// filesNeeded is the open-file limit a process of the run needs: each
// holds one end of every connection, one per stream, or with HTTP/2 one
// per -streams-per-conn streams (rounded up for each source address and
// server process, which dial their own, and as many again for dials that
// race), and 1024 for everything else.
func filesNeeded(o options) uint64 {
	conns := o.Endpoints
	if o.StreamsPerConn > 0 {
		pools := max(o.Sources, 1) * max(o.Processes, 1)
		conns = 2 * (o.Endpoints/o.StreamsPerConn + pools)
	}
	return uint64(conns) + 1024
}

func errorsJoin(errs ...error) error { return errors.Join(errs...) }
