package server

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/testkit"
)

// TestViewCache: a cheap view is recomputed for every page; a costly one
// is reused until it expires, then recomputed in the background while the
// old one is shown; after a change the next page waits for a new one.
func TestViewCache(t *testing.T) {
	clock := testkit.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	var n atomic.Int64
	cost := viewFreshBelow / 2
	compute := func(ctx context.Context) (*registryView, error) {
		return &registryView{at: clock.Now(), cost: cost, states: map[string]string{"n": string(rune('0' + n.Add(1)))}}, nil
	}
	c := newViewCache(compute, clock.Now, slog.New(slog.DiscardHandler))
	defer c.close()
	ctx := context.Background()
	get := func() string {
		t.Helper()
		v, err := c.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v.states["n"]
	}
	if a, b := get(), get(); a != "1" || b != "2" {
		t.Fatalf("cheap views %s, %s: want each page computing its own (1, 2)", a, b)
	}
	cost = viewFreshBelow * 10
	c.invalidate()
	if got := get(); got != "3" {
		t.Fatalf("after a change: view %s, want a new one (3)", got)
	}
	clock.Advance(viewMaxAge - time.Second)
	if got := get(); got != "3" {
		t.Fatalf("costly view before it expires: %s, want the kept one (3)", got)
	}
	clock.Advance(time.Second)
	if got := get(); got != "3" {
		t.Fatalf("expired view: %s, want the kept one (3) while a new one is computed", got)
	}
	c.wg.Wait() // the background computation
	if got := get(); got != "4" {
		t.Fatalf("after the background computation: view %s, want the new one (4)", got)
	}
	c.invalidate()
	if got := get(); got != "5" {
		t.Fatalf("after a change: view %s, want a new one (5)", got)
	}
}
