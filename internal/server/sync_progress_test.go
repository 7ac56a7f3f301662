package server

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
)

// TestSyncProgress: the running sync's progress sums the downloads the
// mirror reports; none is reported outside a sync.
func TestSyncProgress(t *testing.T) {
	s := &syncer{}
	s.progress("a", 5, 10) // no sync running: ignored
	if p := s.Progress(); p != nil {
		t.Fatalf("progress without a sync: %+v", p)
	}
	start := time.Now()
	s.prog = &syncProgress{started: start, files: map[string][2]int64{}}
	s.progress("a", 5, 10)
	s.progress("b", 1, 100)
	s.progress("a", 10, 10)
	p := s.Progress()
	if p == nil || p.Files != 2 || p.BytesDone != 11 || p.BytesTotal != 110 || !p.Started.Equal(start) {
		t.Fatalf("progress %+v, want 2 files, 11 of 110 bytes", p)
	}
}

// TestLastDuringSync: the outcome of the last sync (what GET
// /api/v1/status shows) is read while a sync runs, without waiting for
// it; before, status waited for the whole sync.
func TestLastDuringSync(t *testing.T) {
	var block atomic.Bool
	asked, release := make(chan struct{}, 1), make(chan struct{})
	s, _ := newTestServerWrap(t, Config{}, time.Now, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if block.Load() && strings.HasSuffix(r.URL.Path, "timestamp.json") {
				select {
				case asked <- struct{}{}:
				default:
				}
				<-release
			}
			h.ServeHTTP(w, r)
		})
	})
	first, err := s.sync.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	block.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.sync.Sync(context.Background())
	}()
	defer func() {
		close(release)
		<-done
	}()
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		t.Fatal("the second sync did not ask the origin")
	}
	got := make(chan *api.SyncResult, 1)
	go func() { got <- s.sync.Last() }()
	select {
	case l := <-got:
		if l == nil || !l.Started.Equal(first.Started) {
			t.Fatalf("last sync while another runs: %+v, want the first (%v)", l, first.Started)
		}
		if s.sync.Progress() == nil {
			t.Fatal("no progress while a sync runs")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Last waited for the running sync")
	}
}
