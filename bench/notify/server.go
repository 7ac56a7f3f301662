package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cascade-update/cascade/bench/internal/benchdb"
	"github.com/cascade-update/cascade/internal/httpserver"
	"github.com/cascade-update/cascade/internal/notify/hub"
	"github.com/cascade-update/cascade/internal/store"
)

// stats is what the server process reports of itself.
type stats struct {
	Connected  int     `json:"connected"`
	HeapMiB    float64 `json:"heap_inuse_mib"`
	StackMiB   float64 `json:"stack_inuse_mib"`
	SysMiB     float64 `json:"go_sys_mib"`
	RSSMiB     float64 `json:"rss_mib"`
	Goroutines int     `json:"goroutines"`
	// Open TCP connections, and streams served over HTTP/2: with
	// -streams-per-conn many streams share a connection.
	Conns     int `json:"conns"`
	H2Streams int `json:"h2_streams"`
}

// Connections and HTTP/2 streams open in this server process.
var openConns, h2Streams atomic.Int64

// ready is the server process's first line on stdout.
type ready struct {
	Addr   string   `json:"addr"`
	Agents []string `json:"agents"`
	Others []string `json:"clients"`
	Setup  string   `json:"setup"`
}

// serve is the server process: a store with the endpoints, a hub served
// over HTTP(S) with a stand-in for the server's authentication (the
// bearer token is the endpoint id), and control routes for the driver;
// or, with -baseline, the bare broadcaster (baseline.go). It stops when
// its standard input closes (the driver exited).
func serve(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // owned by serve: ends with stdin, which ends serve
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	began := time.Now()
	var (
		handler http.Handler
		rd      ready
		h       *hub.Hub
		err     error
	)
	if o.Baseline {
		handler, rd = serveBaseline(ctx, o)
	} else {
		var (
			st             store.Store
			eps            map[string]hub.Endpoint
			agents, others []string
		)
		if o.Join != "" {
			st, eps, agents, others, err = joinStore(ctx, o.Join)
		} else {
			dsn, cleanup, derr := database(ctx, o.Database)
			if derr != nil {
				return derr
			}
			defer cleanup()
			st, eps, agents, others, err = setupStore(ctx, dsn, o)
		}
		if err != nil {
			return err
		}
		defer st.Close()
		h, err = hub.New(hub.Options{Store: st, AgentTimeout: o.AgentTimeout,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /events", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 {
				h2Streams.Add(1)
				defer h2Streams.Add(-1)
			}
			id, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if e, ok := eps[id]; ok {
				r = r.WithContext(hub.WithEndpoint(r.Context(), e))
			}
			h.ServeHTTP(w, r)
		}))
		control(mux, h, st, eps[agents[0]].Domain)
		handler, rd = mux, ready{Agents: agents, Others: others}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := httpserver.NewServer(handler, nil)
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			openConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			openConns.Add(-1)
		}
	}
	if o.TLS || o.StreamsPerConn > 0 {
		c := httptest.NewTLSServer(http.NotFoundHandler()) // for its test certificate
		// HTTP/1.1 over TLS: one connection per stream; with
		// -streams-per-conn, HTTP/2 with up to that many streams on
		// a connection (this server only: the management server keeps
		// net/http's default, 250).
		srv.TLSConfig = &tls.Config{Certificates: c.TLS.Certificates, NextProtos: []string{"http/1.1"}}
		if o.StreamsPerConn > 0 {
			srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
			srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: o.StreamsPerConn}
		}
		c.Close()
	}
	hubDone := make(chan error, 1)
	if h != nil {
		go func() { hubDone <- h.Run(ctx) }()
	} else {
		hubDone <- nil
	}
	rd.Addr, rd.Setup = ln.Addr().String(), time.Since(began).Round(time.Millisecond).String()
	line, _ := json.Marshal(rd)
	fmt.Println(string(line))
	err = httpserver.Run(ctx, srv, ln, httpserver.Options{ShutdownTimeout: 5 * time.Second})
	cancel()
	return errorsJoin(err, <-hubDone)
}

// database returns the DSN of an empty database for the run: a new
// SQLite file, or a new schema in the given PostgreSQL database (so that
// endpoints of earlier runs are not notified too), removed by cleanup.
func database(ctx context.Context, pg string) (dsn string, cleanup func(), err error) {
	return benchdb.New(ctx, pg, "cascade_bench_")
}

// control adds the driver's routes: notify, report done, delivery
// counts, stats.
func control(mux *http.ServeMux, h *hub.Hub, st store.Store, domain string) {
	mux.HandleFunc("GET /bench/counts", func(w http.ResponseWriter, r *http.Request) {
		c, err := st.DeliveryCounts(r.Context(), r.URL.Query().Get("notification"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(c)
	})
	mux.HandleFunc("POST /bench/notify", func(w http.ResponseWriter, r *http.Request) {
		id, err := h.Notify(r.Context(), hub.Announcement{Domain: domain, Versions: map[string]string{
			"pattern": r.URL.Query().Get("version"), "engine": "7.1"}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, id)
	})
	mux.HandleFunc("POST /bench/done", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := h.Done(r.Context(), q.Get("endpoint"), q.Get("notification"), true, ""); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	statsRoute(mux, h.ConnectedCount)
}

// statsRoute adds the route reporting the process's memory and streams.
func statsRoute(mux *http.ServeMux, connected func() int) {
	mux.HandleFunc("GET /bench/stats", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(stats{Connected: connected(), HeapMiB: mib(ms.HeapInuse), StackMiB: mib(ms.StackInuse),
			SysMiB: mib(ms.Sys), RSSMiB: rssMiB(), Goroutines: runtime.NumGoroutine(),
			Conns: int(openConns.Load()), H2Streams: int(h2Streams.Load())})
	})
}

// setupStore opens the store and enrolls the endpoints in a new domain:
// o.Agents agents, the others clients.
func setupStore(ctx context.Context, dsn string, o options) (store.Store, map[string]hub.Endpoint, []string, []string, error) {
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	domain := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if _, err := st.CreateDomain(ctx, domain); err != nil {
		st.Close()
		return nil, nil, nil, nil, err
	}
	// In batches of 1000 (store.CreateEndpoints, one transaction each).
	stamp := time.Now().UnixNano() % 1e6
	for start := 0; start < o.Endpoints; start += 1000 {
		es := make([]store.Endpoint, min(1000, o.Endpoints-start))
		for k := range es {
			i := start + k
			_, h, err := store.NewSecret("b")
			if err != nil {
				st.Close()
				return nil, nil, nil, nil, err
			}
			es[k] = store.Endpoint{Hostname: "ep-" + strconv.Itoa(i), Domain: domain, CredentialHash: h}
			if i < o.Agents {
				es[k].Role, es[k].AgentID = store.RoleAgent, fmt.Sprintf("ua-%d-%d", stamp, i)
			}
		}
		if err := st.CreateEndpoints(ctx, es); err != nil {
			st.Close()
			return nil, nil, nil, nil, err
		}
	}
	eps, agents, others, err := endpointsOf(ctx, st)
	if err != nil {
		st.Close()
		return nil, nil, nil, nil, err
	}
	return st, eps, agents, others, nil
}

// joinStore opens the database another process set up (-join) and
// reads its endpoints.
func joinStore(ctx context.Context, dsn string) (store.Store, map[string]hub.Endpoint, []string, []string, error) {
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	eps, agents, others, err := endpointsOf(ctx, st)
	if err != nil {
		st.Close()
		return nil, nil, nil, nil, err
	}
	return st, eps, agents, others, nil
}

// endpointsOf lists the store's endpoints: by id, and the ids of the
// agents and of the others, in id order.
func endpointsOf(ctx context.Context, st store.Store) (map[string]hub.Endpoint, []string, []string, error) {
	list, err := st.ListEndpoints(ctx, store.EndpointFilter{})
	if err != nil {
		return nil, nil, nil, err
	}
	eps := make(map[string]hub.Endpoint, len(list))
	var agents, others []string
	for _, e := range list {
		eps[e.ID] = hub.Endpoint{ID: e.ID, Role: e.Role, Domain: e.Domain}
		if e.Role == store.RoleAgent {
			agents = append(agents, e.ID)
		} else {
			others = append(others, e.ID)
		}
	}
	if len(agents) == 0 {
		return nil, nil, nil, fmt.Errorf("no agent among the %d endpoints", len(list))
	}
	return eps, agents, others, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// rssMiB is the process's resident set size.
func rssMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
