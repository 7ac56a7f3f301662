package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cascade-update/cascade/internal/notify"
	"github.com/cascade-update/cascade/internal/notify/listen"
)

// round is one measured notification.
type round struct {
	version string
	start   time.Time
	total   int64
	count   atomic.Int64
	// Nanoseconds from start: last agent event, first and last client
	// event.
	lastAgent, firstClient, lastClient atomic.Int64
	done                               chan struct{}
}

func newRound(version string, total int) *round {
	r := &round{version: version, start: time.Now(), total: int64(total), done: make(chan struct{})}
	r.firstClient.Store(math.MaxInt64)
	return r
}

// got records one endpoint's event.
func (r *round) got(agent bool) {
	d := int64(time.Since(r.start))
	if agent {
		storeMax(&r.lastAgent, d)
	} else {
		storeMin(&r.firstClient, d)
		storeMax(&r.lastClient, d)
	}
	if r.count.Add(1) == r.total {
		close(r.done)
	}
}

func storeMax(a *atomic.Int64, v int64) {
	for old := a.Load(); v > old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}

func storeMin(a *atomic.Int64, v int64) {
	for old := a.Load(); v < old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}

// driver is the endpoints' side.
type driver struct {
	o        options
	baseline bool
	base     string   // the first server process: notifications, counts
	bases    []string // every server process; endpoint k connects to bases[k%len(bases)]
	ctl      *http.Client
	cur      atomic.Pointer[round]
	ready    ready
}

// figures are what one server process measured.
type figures struct {
	Setup        string
	Connect      time.Duration
	Idle, Conns  stats
	Notified     []time.Duration // per round: every endpoint notified
	AgentsLast   []time.Duration // per round: last agent notified
	ClientsFirst []time.Duration // per round: first client notified
}

// drive measures the hub (a server process), then the bare broadcaster
// (another), with the same endpoints, and prints the comparison.
func drive(o options) error {
	cascade, err := measureServer(o, false)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	fmt.Println()
	base, err := measureServer(o, true)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	res := summarize(o, cascade, base)
	res.print()
	if o.JSON != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		return os.WriteFile(o.JSON, append(b, '\n'), 0o644)
	}
	return nil
}

// measureServer starts a server process (the hub, or the baseline),
// connects the endpoints, measures o.Rounds notifications and returns
// the figures.
func measureServer(o options, baseline bool) (*figures, error) {
	return measureServers(o, baseline, "", 1)
}

// measureServers is measureServer with n hub processes on the database
// join (set up by the driver; "": the first process sets up its own).
func measureServers(o options, baseline bool, join string, n int) (*figures, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-serve", "-endpoints", strconv.Itoa(o.Endpoints), "-agents", strconv.Itoa(o.Agents),
		"-agent-timeout", o.AgentTimeout.String(), "-database", o.Database, "-tls=" + strconv.FormatBool(o.TLS),
		"-baseline=" + strconv.FormatBool(baseline), "-join", join,
		"-streams-per-conn", strconv.Itoa(o.StreamsPerConn)}
	d := &driver{o: o, baseline: baseline, ctl: &http.Client{Timeout: time.Minute, Transport: transport(nil, o.StreamsPerConn > 0, false)}}
	for i := range n {
		cmd := exec.Command(exe, args...)
		stdin, err := cmd.StdinPipe() // closing it stops the server
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		defer func() { stdin.Close(); cmd.Wait() }()
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("server process: %w", err)
		}
		var rd ready
		if err := json.Unmarshal(line, &rd); err != nil {
			return nil, fmt.Errorf("server process said %q: %w", line, err)
		}
		base := "http://"
		if o.TLS || o.StreamsPerConn > 0 {
			base = "https://"
		}
		d.bases = append(d.bases, base+rd.Addr)
		if i == 0 {
			d.ready, d.base = rd, base+rd.Addr
		}
	}
	return d.run()
}

// transport returns an HTTP/1.1 transport dialling from local (any
// address when nil), trusting any certificate (loopback benchmark); with
// h2, one speaking HTTP/2, which puts as many streams on a connection as
// the server allows and dials another when they are full, or with
// oneConn holds a single connection to each server (the endpoints'
// groups; not the driver's control client, whose reports of 500 agents
// must not wait for each other's slots).
func transport(local net.Addr, h2, oneConn bool) *http.Transport {
	dialer := &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
	t := &http.Transport{DialContext: dialer.DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		MaxIdleConnsPerHost: 64, DisableCompression: true, ResponseHeaderTimeout: 30 * time.Second, ForceAttemptHTTP2: h2}
	if h2 && oneConn {
		// One connection to each server: requests started together
		// would otherwise each dial their own before the first is up,
		// and more when a connection is at the server's limit.
		t.MaxConnsPerHost = 1
		t.HTTP2 = &http.HTTP2Config{StrictMaxConcurrentRequests: true}
	}
	return t
}

func (d *driver) run() (*figures, error) {
	what := "hub (internal/notify/hub), database " + dbName(d.o.Database)
	if len(d.bases) > 1 {
		what = fmt.Sprintf("%d hub processes (internal/notify/hub), database %s", len(d.bases), dbName(d.o.Database))
	}
	if d.baseline {
		what = "baseline: bare SSE broadcaster, no store"
	}
	proto := fmt.Sprintf("TLS %v", d.o.TLS)
	if d.o.StreamsPerConn > 0 {
		proto = fmt.Sprintf("HTTPS, HTTP/2, up to %d streams per connection", d.o.StreamsPerConn)
	}
	fmt.Printf("%s: %d endpoints (%d agents) set up in %s; %s\n", what, d.o.Endpoints, d.o.Agents, d.ready.Setup, proto)
	f := &figures{Setup: d.ready.Setup}
	var err error
	if f.Idle, err = d.stats(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	began := time.Now()
	d.listenAll(ctx, &wg)
	if f.Conns, err = d.waitConnected(); err != nil {
		return nil, err
	}
	f.Connect = time.Since(began)
	conn, idle := f.Conns, f.Idle
	fmt.Printf("%d streams open after %s, over %d connections (%d streams HTTP/2)\n", conn.Connected,
		f.Connect.Round(time.Millisecond), conn.Conns, conn.H2Streams)
	if d.o.StreamsPerConn > 0 && conn.H2Streams < d.o.Endpoints {
		return nil, fmt.Errorf("-streams-per-conn: only %d of %d streams are HTTP/2", conn.H2Streams, d.o.Endpoints)
	}
	fmt.Printf("server memory: idle heap %.1f MiB, RSS %.1f MiB; with %d streams heap %.1f MiB, Go sys %.1f MiB, "+
		"goroutine stacks %.1f MiB, RSS %.1f MiB (%.1f KiB RSS per stream), %d goroutines\n", idle.HeapMiB, idle.RSSMiB,
		conn.Connected, conn.HeapMiB, conn.SysMiB, conn.StackMiB, conn.RSSMiB, (conn.RSSMiB-idle.RSSMiB)*1024/float64(conn.Connected), conn.Goroutines)
	for i := range d.o.Rounds {
		r, err := d.round(i)
		if err != nil {
			return nil, err
		}
		f.Notified = append(f.Notified, time.Duration(max(r.lastAgent.Load(), r.lastClient.Load())))
		f.AgentsLast = append(f.AgentsLast, time.Duration(r.lastAgent.Load()))
		f.ClientsFirst = append(f.ClientsFirst, time.Duration(r.firstClient.Load()))
	}
	after, err := d.stats()
	if err == nil {
		fmt.Printf("server memory after the rounds: heap %.1f MiB, goroutine stacks %.1f MiB, RSS %.1f MiB, %d streams\n",
			after.HeapMiB, after.StackMiB, after.RSSMiB, after.Connected)
	}
	return f, err
}

// listenAll starts a listen.Run per endpoint, in batches, each
// source address with its own transport.
func (d *driver) listenAll(ctx context.Context, wg *sync.WaitGroup) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// A client for each source address; with HTTP/2 one for each
	// -streams-per-conn endpoints of each server process (a transport
	// holds one connection to each server), the groups taking the source
	// addresses in turn.
	clients := make([]*http.Client, d.o.Sources)
	perClient := 1
	if spc := d.o.StreamsPerConn; spc > 0 {
		perClient = spc * len(d.bases)
		clients = make([]*http.Client, (d.o.Endpoints+perClient-1)/perClient)
	}
	for i := range clients {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%d.o.Sources))}
		clients[i] = &http.Client{Transport: transport(local, d.o.StreamsPerConn > 0, true)}
	}
	i := 0
	start := func(id string, agent bool) {
		client := clients[i/perClient%len(clients)]
		base := d.bases[i%len(d.bases)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			listen.Run(ctx, listen.Options{URL: base + "/events", Token: id, Client: client,
				OnEvent: func(ev notify.Event) { d.event(base, id, agent, ev) }, Logger: logger})
		}()
		// Stay under the listen backlog, and the store's pace.
		if i++; i%500 == 0 {
			time.Sleep(500 * time.Second / time.Duration(d.o.ConnectRate))
		}
	}
	for _, id := range d.ready.Agents {
		start(id, true)
	}
	for _, id := range d.ready.Others {
		start(id, false)
	}
}

// event records an endpoint's event; an agent reports done at once, to
// the server process it is connected to (base).
func (d *driver) event(base, id string, agent bool, ev notify.Event) {
	r := d.cur.Load()
	if r == nil || ev.Versions["pattern"] != r.version {
		return
	}
	r.got(agent)
	if agent {
		q := url.Values{"endpoint": {id}, "notification": {ev.ID}}
		resp, err := d.ctl.Post(base+"/bench/done?"+q.Encode(), "", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "report done:", err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// round measures one notification.
func (d *driver) round(i int) (*round, error) {
	r := newRound(fmt.Sprintf("r%d", i+1), d.o.Endpoints)
	d.cur.Store(r)
	r.start = time.Now()
	resp, err := d.ctl.Post(d.base+"/bench/notify?version="+r.version, "", nil)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	notified := time.Since(r.start)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("notify: %s: %s", resp.Status, body)
	}
	select {
	case <-r.done:
	case <-time.After(5 * time.Minute):
		return nil, fmt.Errorf("round %d: %d of %d endpoints notified after 5 minutes", i+1, r.count.Load(), r.total)
	}
	ms := func(ns int64) string { return time.Duration(ns).Round(time.Millisecond).String() }
	fmt.Printf("round %d (%s): Notify returned in %s; all %d agents notified %s; clients first %s, all %d %s "+
		"=> every endpoint notified in %s\n", i+1, body, notified.Round(time.Millisecond), len(d.ready.Agents),
		ms(r.lastAgent.Load()), ms(r.firstClient.Load()), len(d.ready.Others), ms(r.lastClient.Load()),
		ms(max(r.lastAgent.Load(), r.lastClient.Load())))
	if d.baseline {
		return r, nil
	}
	return r, d.recorded(string(body), r.start)
}

// recorded waits until the store holds no pending delivery of the
// notification, and prints its delivery counts.
func (d *driver) recorded(id string, start time.Time) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var c map[string]map[string]int
		resp, err := d.ctl.Get(d.base + "/bench/counts?notification=" + url.QueryEscape(id))
		if err != nil {
			return err
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&c)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("delivery counts: %w", err)
		}
		if c["agent"]["pending"]+c["client"]["pending"] == 0 || time.Now().After(deadline) {
			fmt.Printf("  store, %s after Notify: agents %v, clients %v\n", time.Since(start).Round(time.Millisecond),
				c["agent"], c["client"])
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitConnected waits until every endpoint holds a stream.
func (d *driver) waitConnected() (stats, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s, err := d.stats()
		if err != nil || s.Connected >= d.o.Endpoints {
			return s, err
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("%d of %d streams open after 3 minutes", s.Connected, d.o.Endpoints)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stats returns the server processes' figures, summed.
func (d *driver) stats() (stats, error) {
	var sum stats
	for _, base := range d.bases {
		var s stats
		resp, err := d.ctl.Get(base + "/bench/stats")
		if err != nil {
			return sum, err
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&s)
		resp.Body.Close()
		if err != nil {
			return sum, err
		}
		sum.Connected += s.Connected
		sum.HeapMiB += s.HeapMiB
		sum.StackMiB += s.StackMiB
		sum.SysMiB += s.SysMiB
		sum.RSSMiB += s.RSSMiB
		sum.Goroutines += s.Goroutines
		sum.Conns += s.Conns
		sum.H2Streams += s.H2Streams
	}
	return sum, nil
}

func dbName(dsn string) string {
	if dsn == "" {
		return "SQLite"
	}
	return "PostgreSQL"
}
