// Command fanout simulates the fan-out of one new component to a fleet:
// endpoints behind 50 update agents (10,000 endpoints in the issue that
// asked for it; 2,000 by default, see below) receive a new 16 MiB
// component version, and the benchmark measures the bytes that leave the
// management server and the origin, the bytes the agents serve, the time
// from the publish until every endpoint is up to date, and the peak
// memory of the process, compared with all endpoints updating straight
// from the server.
//
// Two scenarios run in one invocation, each in its own child process
// (this program re-executed with the hidden -scenario flag) so that each
// peak RSS (VmHWM) is its own:
//
//   - direct: the server mirrors the new version from the origin, then
//     every endpoint updates from the server;
//   - agents: the server mirrors it, then the update agents (the real
//     internal/agent service, each on its own 127.0.0.x address) refresh
//     from the server, verified, then endpoint i updates from agent
//     i % agents.
//
// The origin is a vendor repository built with internal/repo and served
// with internal/static; the server is a verified mirror of it made with
// internal/mirror (as the management server's sync does) and served with
// internal/static. Every endpoint is a lightweight in-process client
// with its own trusted metadata (an internal/trust store of its own): it
// probes its source (root, timestamp, snapshot, targets, hash bins, all
// verified), reads the verified index, streams the new target through
// sha256 and checks its signed length and hash, then commits the new
// metadata. See README.md.
//
// The default is 2,000 endpoints because the simulation is bound by the
// CPU of the simulated endpoints (each verifies its metadata and hashes
// 16 MiB): 10,000 take about nine minutes on two CPUs, 2,000 about two.
// Usage:
//
//	go run ./bench/fanout [-endpoints 2000] [-agents 50] [-size 16777216] [-concurrency 256] [-dir DIR] [-json FILE]
//	go run ./bench/fanout -endpoints 10000    # the fleet
//	go run ./bench/fanout -server-link 125000000   # the server behind a 1 Gbit/s link
//
// Without -server-link everything runs over loopback, so the times are
// the endpoints' own CPU (hashing, verifying) and the same in both
// scenarios; with it, every response of the server (metadata and
// targets, to agents or endpoints) shares one paced link, as when the
// fleet sits behind a WAN link or the server's uplink, and the times show
// what the agents save.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"github.com/cascade-update/cascade/bench/internal/rlimit"
)

// options are the flags.
type options struct {
	Endpoints   int
	Agents      int
	Size        int64
	Concurrency int
	ServerLink  int64
	Deltas      bool // the deltas comparison (parent); deltas on (child)
	Similar     bool // internal: the content of the deltas comparison
	Dir         string
	JSON        string
	Scenario    string // internal: run this scenario and print its result
}

func main() {
	log.SetFlags(0)
	var o options
	flag.IntVar(&o.Endpoints, "endpoints", 2000, "simulated endpoints (the issue's fleet: 10000; about nine minutes on 2 CPUs)")
	flag.IntVar(&o.Agents, "agents", 50, "update agents (and groups of endpoints sharing a connection pool)")
	flag.Int64Var(&o.Size, "size", 16<<20, "size of the new component in bytes")
	flag.IntVar(&o.Concurrency, "concurrency", 256, "endpoint updates in flight")
	flag.Int64Var(&o.ServerLink, "server-link", 0, "bytes/s of the link all the server's responses share, e.g. 125000000 for 1 Gbit/s (0: unlimited)")
	flag.BoolVar(&o.Deltas, "deltas", false, "compare, through the agents, a new version differing by 0.5% from the one held with deltas off and on")
	flag.BoolVar(&o.Similar, "similar", false, "internal: with -scenario, the content of the deltas comparison")
	flag.StringVar(&o.Dir, "dir", defaultDir(), "where the working directories go (default: /dev/shm if present)")
	flag.StringVar(&o.JSON, "json", "", "also write the figures to this file")
	flag.StringVar(&o.Scenario, "scenario", "", "internal: run one scenario (direct or agents) and print its result as JSON")
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/fanout:", err)
		os.Exit(2)
	}
	var err error
	if o.Scenario != "" {
		err = child(o)
	} else {
		err = parent(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/fanout:", err)
		os.Exit(1)
	}
}

func (o options) check() error {
	switch {
	case o.Endpoints < 1, o.Agents < 1, o.Concurrency < 1:
		return errors.New("-endpoints, -agents and -concurrency must be at least 1")
	case o.Size < 1:
		return errors.New("-size must be at least 1")
	case o.ServerLink < 0:
		return errors.New("-server-link cannot be negative")
	case o.Scenario != "" && o.Scenario != direct && o.Scenario != viaAgents:
		return fmt.Errorf("-scenario %q: want %s or %s", o.Scenario, direct, viaAgents)
	}
	return nil
}

// defaultDir is /dev/shm when it exists: the simulated machines' disks
// are memory, so that 10,050 machines' fsyncs do not queue on one disk.
func defaultDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

func (o options) config() config {
	prefix := o.Scenario
	if o.Similar {
		prefix += map[bool]string{false: " (deltas off)", true: " (deltas on)"}[o.Deltas]
	}
	return config{Endpoints: o.Endpoints, Agents: o.Agents, Size: o.Size, Concurrency: o.Concurrency, Dir: o.Dir, ServerLink: o.ServerLink,
		Similar: o.Similar, Deltas: o.Similar && o.Deltas, Log: log.New(os.Stderr, prefix+": ", log.Ltime)}
}

// child runs one scenario and prints its result on stdout.
func child(o options) error {
	if err := rlimit.RaiseFiles(uint64(o.Concurrency)*4 + uint64(o.Agents)*64 + 4096); err != nil {
		return fmt.Errorf("raise the open-file limit: %w", err)
	}
	res, err := measure(context.Background(), o.config(), o.Scenario)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// parent runs both scenarios, each in a child process, and reports.
func parent(o options) error {
	log.Printf("fan-out: %d endpoints, %d agents, a new %s component, %d in flight, %d CPUs, working in %s",
		o.Endpoints, o.Agents, mib(o.Size), o.Concurrency, runtime.NumCPU(), o.Dir)
	if o.Deltas {
		return parentDeltas(o)
	}
	d, err := runChild(o, direct)
	if err != nil {
		return err
	}
	a, err := runChild(o, viaAgents)
	if err != nil {
		return err
	}
	s := summarize(o, d, a)
	printTable(os.Stdout, s)
	if o.JSON != "" {
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(o.JSON, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", o.JSON, err)
		}
	}
	if d.Verified != o.Endpoints || a.Verified != o.Endpoints {
		return fmt.Errorf("not every endpoint verified the new version (direct %d, agents %d of %d)",
			d.Verified, a.Verified, o.Endpoints)
	}
	return nil
}

// parentDeltas runs the deltas comparison: the agents scenario with the
// same content, deltas off then on, each in a child process.
func parentDeltas(o options) error {
	o.Similar, o.Deltas = true, false
	off, err := runChild(o, viaAgents)
	if err != nil {
		return err
	}
	o.Deltas = true
	on, err := runChild(o, viaAgents)
	if err != nil {
		return err
	}
	s := summarizeDeltas(o, off, on)
	printDeltaTable(os.Stdout, s)
	if o.JSON != "" {
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(o.JSON, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", o.JSON, err)
		}
	}
	if off.Verified != o.Endpoints || on.Verified != o.Endpoints {
		return fmt.Errorf("not every endpoint verified the new version (deltas off %d, on %d of %d)", off.Verified, on.Verified, o.Endpoints)
	}
	if on.EndpointDeltas != int64(o.Endpoints) {
		return fmt.Errorf("%d of %d endpoints applied the delta", on.EndpointDeltas, o.Endpoints)
	}
	return nil
}

// runChild re-executes this program for one scenario.
func runChild(o options, scenario string) (*scenarioResult, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program: %w", err)
	}
	cmd := exec.Command(self, "-scenario", scenario, "-endpoints", strconv.Itoa(o.Endpoints),
		"-agents", strconv.Itoa(o.Agents), "-size", strconv.FormatInt(o.Size, 10),
		"-concurrency", strconv.Itoa(o.Concurrency), "-dir", o.Dir, "-server-link", strconv.FormatInt(o.ServerLink, 10),
		"-similar="+strconv.FormatBool(o.Similar), "-deltas="+strconv.FormatBool(o.Deltas))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", scenario, err)
	}
	var res scenarioResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("scenario %s: read its result: %w", scenario, err)
	}
	return &res, nil
}
