package server

import (
	"testing"
	"time"
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
