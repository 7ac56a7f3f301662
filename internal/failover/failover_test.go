package failover

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// kind is how a simulated source behaves.
type kind int

const (
	live     kind = iota // probe and use succeed
	dead                 // probe fails at once (refused)
	hanging              // probe blocks until its timeout or cancellation
	stale                // probe answers late with "stale"
	notFound             // probe answers with "not found"
	tampered             // probe succeeds, use fails (bad target)
)

var kindName = []string{"live", "dead", "hanging", "stale", "not-found", "tampered"}

type sim struct {
	kinds   []kind
	delays  []time.Duration
	timeout time.Duration

	mu      sync.Mutex
	used    []int
	inUse   atomic.Int32
	probing atomic.Int32
	peak    atomic.Int32
}

func (s *sim) probe(ctx context.Context, i int) (string, error) {
	n := s.probing.Add(1)
	defer s.probing.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	wait := s.delays[i]
	if s.kinds[i] == hanging {
		wait = s.timeout
	}
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	switch s.kinds[i] {
	case live, tampered:
		return fmt.Sprintf("meta-%d", i), nil
	default:
		return "", errors.New(kindName[s.kinds[i]])
	}
}

func (s *sim) use(_ context.Context, i int, p string) error {
	if s.inUse.Add(1) != 1 {
		return errors.New("uses overlap")
	}
	defer s.inUse.Add(-1)
	s.mu.Lock()
	s.used = append(s.used, i)
	s.mu.Unlock()
	if p != fmt.Sprintf("meta-%d", i) {
		return fmt.Errorf("use %d got probe result %q", i, p)
	}
	if s.kinds[i] == tampered {
		return errors.New("tampered")
	}
	return nil
}

// sequential is the reference: the walk of docs/update-process.md, one source at a time.
func sequential(kinds []kind) (chosen int, errs []string, used []int) {
	chosen = -1
	for i, k := range kinds {
		switch k {
		case live:
			used = append(used, i)
			return i, errs, used
		case tampered:
			used = append(used, i)
			errs = append(errs, "tampered")
		case hanging:
			errs = append(errs, "hanging")
		default:
			errs = append(errs, kindName[k])
		}
	}
	return chosen, errs, used
}

// TestWalkEqualsSequential is the property of docs/update-process.md (Fast ordered failover): over
// random lists of live, dead, hanging, stale, not-found and tampered
// sources, the concurrent walk chooses the source a sequential walk
// chooses, reports the same failures before it, uses sources in the same
// order, one at a time, and never more probes at once than allowed.
func TestWalkEqualsSequential(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	for trial := 0; trial < 300; trial++ {
		n := r.IntN(40)
		s := &sim{kinds: make([]kind, n), delays: make([]time.Duration, n), timeout: time.Duration(1+r.IntN(30)) * time.Millisecond}
		for i := range s.kinds {
			s.kinds[i] = kind(r.IntN(6))
			if r.IntN(3) == 0 {
				s.kinds[i] = dead
			}
			s.delays[i] = time.Duration(r.IntN(3000)) * time.Microsecond
		}
		o := Options{MaxInFlight: 1 + r.IntN(8), Hedge: time.Duration(1+r.IntN(5)) * time.Millisecond}
		// In a synctest bubble the probes' delays, timeouts and the
		// hedges pass on the bubble's clock: no trial waits on real time,
		// and the interleaving does not depend on the machine's load.
		var res Result[string]
		synctest.Test(t, func(t *testing.T) { res = Walk(context.Background(), n, o, s.probe, s.use) })
		wantChosen, wantErrs, wantUsed := sequential(s.kinds)
		kinds := fmt.Sprint(s.kinds)
		if res.Chosen != wantChosen {
			t.Fatalf("trial %d %s: chosen %d, sequential %d", trial, kinds, res.Chosen, wantChosen)
		}
		for i, err := range res.Errs {
			var want string
			switch {
			case i < len(wantErrs) && (wantChosen < 0 || i < wantChosen):
				want = wantErrs[i]
			case i == wantChosen:
				want = "<nil>"
			default:
				want = ErrNotTried.Error()
			}
			got := fmt.Sprint(err)
			if want == "hanging" && errors.Is(err, context.DeadlineExceeded) {
				got = "hanging"
			}
			if got != want {
				t.Fatalf("trial %d %s: source %d error %q, sequential %q", trial, kinds, i, got, want)
			}
		}
		if fmt.Sprint(s.used) != fmt.Sprint(wantUsed) {
			t.Fatalf("trial %d %s: used %v, sequential %v", trial, kinds, s.used, wantUsed)
		}
		if p := int(s.peak.Load()); p > o.MaxInFlight {
			t.Fatalf("trial %d: %d probes in flight, bound %d", trial, p, o.MaxInFlight)
		}
		if p := s.probing.Load(); p != 0 {
			t.Fatalf("trial %d: %d probes still running after Walk returned", trial, p)
		}
	}
}

// TestWalkHedges checks that a quick first source costs one probe.
func TestWalkHedges(t *testing.T) {
	var probes atomic.Int32
	res := Walk(context.Background(), 100, Options{Hedge: time.Hour},
		func(ctx context.Context, i int) (int, error) { probes.Add(1); return i, nil },
		func(ctx context.Context, i, p int) error { return nil })
	if res.Chosen != 0 || probes.Load() != 1 {
		t.Fatalf("chosen %d after %d probes, want 0 after 1", res.Chosen, probes.Load())
	}
}

// TestWalkCancel checks that cancelling the context ends the walk and
// every probe. It runs in a synctest bubble: the hedges that widen the
// probe-ahead window pass on the bubble's clock, and synctest.Wait
// returns once every probe started is blocked, so nothing is polled.
func TestWalkCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var running atomic.Int32
		done := make(chan Result[int], 1)
		go func() {
			done <- Walk(ctx, 10, Options{Hedge: time.Millisecond},
				func(ctx context.Context, i int) (int, error) {
					running.Add(1)
					defer running.Add(-1)
					<-ctx.Done()
					return 0, ctx.Err()
				},
				func(ctx context.Context, i, p int) error { return nil })
		}()
		time.Sleep(10 * time.Millisecond) // ten hedges: the window has grown
		synctest.Wait()
		if n := running.Load(); n < 4 {
			t.Fatalf("%d probes running after ten hedges, want at least 4", n)
		}
		cancel()
		res := <-done
		if res.Chosen != -1 || !errors.Is(res.Errs[0], context.Canceled) {
			t.Fatalf("result %+v", res)
		}
		if running.Load() != 0 {
			t.Fatal("probes still running")
		}
	})
}

func TestHealth(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHealth(func() time.Time { return now }, 30*time.Second)
	if h.Failed("a") != nil {
		t.Fatal("fresh cache remembers a failure")
	}
	h.Fail("a", errors.New("refused"))
	if err := h.Failed("a"); err == nil || err.Error() != "refused" {
		t.Fatalf("Failed = %v", err)
	}
	now = now.Add(29 * time.Second)
	if h.Failed("a") == nil {
		t.Fatal("forgot before the ttl")
	}
	now = now.Add(time.Second)
	if h.Failed("a") != nil {
		t.Fatal("remembered after the ttl")
	}
	h.Fail("b", errors.New("x"))
	h.Forget("b")
	if h.Failed("b") != nil {
		t.Fatal("Forget did not forget")
	}
}
