package mirror

import (
	"context"
	"sync"
	"testing"
)

// TestMirrorProgress: Progress hears of every target downloaded, ending
// with its whole length.
func TestMirrorProgress(t *testing.T) {
	fx := newFixture(t)
	fx.publish("pattern", "1.0", "a.ptn", "b.ptn")
	var mu sync.Mutex
	last := map[string][2]int64{}
	res, err := Copy(context.Background(), Options{Store: fx.store, Source: fx.src, Fetcher: fx.f, Dir: fx.dir,
		Progress: func(target string, done, total int64) {
			mu.Lock()
			defer mu.Unlock()
			last[target] = [2]int64{done, total}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != res.Fetched || res.Fetched == 0 {
		t.Fatalf("progress of %d targets, %d fetched: %v", len(last), res.Fetched, last)
	}
	for target, dt := range last {
		if dt[0] != dt[1] || dt[1] == 0 {
			t.Errorf("%s: last progress %d of %d", target, dt[0], dt[1])
		}
	}
}
