// Package failover walks an ordered list of update sources fast while
// choosing exactly as a sequential walk would (docs/update-process.md, "Fast
// ordered failover").
//
// A sequential walk tries source 1, and only when it is unable to update
// tries source 2, and so on; with 1023 dead sources and a timeout each, that
// takes hours. Walk instead probes sources ahead concurrently, hedging: it
// probes the first source, and whenever the head of the list (the source a
// sequential walk would be waiting for) stays undecided for a Hedge
// interval, it multiplies the number of sources probed ahead by Growth, up
// to MaxInFlight probes at once. Sources that fail fast (refused, 404) keep
// the walk nearly sequential and cheap; sources that hang open it wide. Decisions are still taken strictly in list
// order: a source is used only once every source before it has failed, so
// the chosen source, and the failures reported for the sources before it,
// are those of the sequential walk. Sources after the chosen one are
// reported as not tried, whatever their probes found.
//
// A quick first source costs one probe: no other source is contacted unless
// the head takes longer than Hedge to answer.
package failover

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Options tune a Walk. Zero values take the defaults.
type Options struct {
	// MaxInFlight bounds the probes running at once. Default 1024, the
	// length of the longest list, so that a list of sources that accept
	// and never answer costs about one probe timeout.
	MaxInFlight int
	// Hedge is how long the head of the list may stay undecided before the
	// probe-ahead window grows. Default 50ms.
	Hedge time.Duration
	// Growth multiplies the window each time the head stalls for Hedge.
	// Default 4: from one source to 1024 in five stalls.
	Growth int
}

// DefaultMaxInFlight and DefaultHedge are the defaults of Options.
const (
	DefaultMaxInFlight = 1024
	DefaultHedge       = 50 * time.Millisecond
	DefaultGrowth      = 4
)

// ErrNotTried is the outcome of a source the walk never needed: one after
// the chosen source, or after the context was cancelled.
var ErrNotTried = errors.New("not tried")

// Result is the outcome of a Walk.
type Result[P any] struct {
	// Chosen is the index of the source that updated, or -1.
	Chosen int
	// Probe is the chosen source's probe result.
	Probe P
	// Errs holds, for every source, why it was unable to update: the probe
	// or the use error. It is nil for the chosen source and ErrNotTried for
	// sources the sequential walk would not have reached.
	Errs []error
}

// Probe checks, concurrently with other probes, whether source i can
// update; it must return promptly when ctx is cancelled.
type Probe[P any] func(ctx context.Context, i int) (P, error)

// Use updates from source i, whose probe succeeded. Uses run one at a
// time, in list order.
type Use[P any] func(ctx context.Context, i int, p P) error

type outcome[P any] struct {
	i   int
	p   P
	err error
}

// Walk tries n sources in order and returns the first that both probes
// and uses successfully. Every probe goroutine has ended when Walk returns.
func Walk[P any](ctx context.Context, n int, o Options, probe Probe[P], use Use[P]) Result[P] {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Hedge <= 0 {
		o.Hedge = DefaultHedge
	}
	if o.Growth < 2 {
		o.Growth = DefaultGrowth
	}
	w := &walker[P]{n: n, o: o, probe: probe, window: 1,
		results: make(chan outcome[P], n), done: make([]*outcome[P], n)}
	probeCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		w.wg.Wait()
	}()
	res := Result[P]{Chosen: -1, Errs: make([]error, n)}
	for i := range res.Errs {
		res.Errs[i] = ErrNotTried
	}
	timer := time.NewTimer(o.Hedge)
	defer timer.Stop()
	for head := 0; head < n; {
		w.launch(probeCtx, head)
		if r := w.done[head]; r != nil {
			if r.err == nil {
				r.err = use(ctx, head, r.p)
			}
			if r.err == nil {
				res.Chosen, res.Probe, res.Errs[head] = head, r.p, nil
				return res
			}
			res.Errs[head] = r.err
			head++
			// A new head: its stall is measured from now.
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(o.Hedge)
			continue
		}
		select {
		case r := <-w.results:
			w.inFlight--
			w.done[r.i] = &r
		case <-timer.C:
			w.window = min(o.Growth*w.window, n)
			timer.Reset(o.Hedge)
		case <-ctx.Done():
			for i := head; i < n; i++ {
				res.Errs[i] = ctx.Err()
			}
			return res
		}
	}
	return res
}

type walker[P any] struct {
	n        int
	o        Options
	probe    Probe[P]
	window   int // sources probed ahead of the head, head included
	next     int // next source to probe
	inFlight int
	results  chan outcome[P]
	done     []*outcome[P]
	wg       sync.WaitGroup
}

// launch starts probes in list order while the window and the in-flight
// bound allow.
func (w *walker[P]) launch(ctx context.Context, head int) {
	for w.next < w.n && w.next < head+w.window && w.inFlight < w.o.MaxInFlight {
		i := w.next
		w.next++
		w.inFlight++
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			p, err := w.probe(ctx, i)
			w.results <- outcome[P]{i: i, p: p, err: err}
		}()
	}
}
