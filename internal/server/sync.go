package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/mirror"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/trust"
)

// syncer mirrors the origin's vendor repository into the served tree
// (internal/mirror: verified, incremental, timestamp last), on a schedule
// and on demand, and records the components it holds. Downloading and
// deploying are separate: the store deploys a synced version unless the
// component is held, and the deployment caps in the site repository keep
// endpoints at a held version.
type syncer struct {
	st       store.Store
	trust    *trust.Store
	fetcher  *fetch.Fetcher
	origin   string
	dir      string // the served tree; the mirror writes dir/vendor
	content  *content
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration
	// retry is the delay after a failed sync (default a minute).
	retry time.Duration

	mu sync.Mutex // one sync at a time
	// kick asks Run for a sync now (buffered: requests coalesce).
	kick    chan struct{}
	metrics *metrics // counts runs and failures (nil: none)
	// writer reports whether this process is the writer, which alone
	// records and deploys what it synced; the others only mirror (nil:
	// always the writer).
	writer func() bool
	// signal tells the other server processes (nil: none).
	signal func(ctx context.Context, payload string) error
	// server names this process in the sync log (its URL).
	server string

	pmu  sync.Mutex      // guards prog and last, never held during a sync
	prog *syncProgress   // the running sync's downloads (nil: none running)
	last *api.SyncResult // the outcome of the last sync (nil before the first)
}

// syncProgress is what the running sync has downloaded, by target.
type syncProgress struct {
	started time.Time
	files   map[string][2]int64 // done, total
}

// Sync copies the origin now and records and deploys what changed. It
// returns the outcome; err is also recorded in it.
func (s *syncer) Sync(ctx context.Context) (api.SyncResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := api.SyncResult{Started: s.now().UTC()}
	s.pmu.Lock()
	s.prog = &syncProgress{started: res.Started, files: map[string][2]int64{}}
	s.pmu.Unlock()
	wrote := false
	err := s.sync(ctx, &res, &wrote)
	s.pmu.Lock()
	s.prog = nil
	s.pmu.Unlock()
	res.Finished = s.now().UTC()
	if s.metrics != nil {
		s.metrics.syncRuns.Add(1)
		if err != nil {
			s.metrics.syncFailures.Add(1)
		}
	}
	if err != nil {
		res.Error = err.Error()
		s.log.Error("sync from origin", "origin", s.origin, "err", err)
	} else {
		s.log.Info("synced from origin", "timestamp", res.Timestamp, "fetched", res.Fetched, "bytes", res.Bytes,
			"deployed", res.Deployed)
	}
	s.pmu.Lock()
	s.last = &res
	s.pmu.Unlock()
	s.logSync(ctx, res, wrote)
	return res, err
}

// logSync adds the sync's outcome to the sync log in the store. Every
// process logs the syncs it runs; wrote says whether it was the writer
// (which records and deploys) or only mirrored. A sync cancelled by
// shutdown is still logged; a failure to log is only logged.
func (s *syncer) logSync(ctx context.Context, res api.SyncResult, wrote bool) {
	r := store.SyncRecord{Started: res.Started, Finished: res.Finished, Result: store.SyncSucceeded, Error: res.Error,
		Timestamp: res.Timestamp, Targets: res.Targets, Fetched: res.Fetched, Bytes: res.Bytes, Deployed: res.Deployed,
		Server: s.server, Writer: wrote}
	switch {
	case res.Error != "":
		r.Result = store.SyncFailed
	case res.UpToDate:
		r.Result = store.SyncUpToDate
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.st.RecordSync(ctx, r); err != nil {
		s.log.Error("record the sync in the sync log", "err", err)
	}
}

// sync mirrors the origin into res and, in the writer (wrote set true),
// records and deploys what changed.
func (s *syncer) sync(ctx context.Context, res *api.SyncResult, wrote *bool) error {
	m, err := mirror.Copy(ctx, mirror.Options{Store: s.trust, Fetcher: s.fetcher, Dir: s.dir,
		Source: trust.Source{Name: "origin", Base: s.origin}, Progress: s.progress})
	if err != nil {
		return fmt.Errorf("mirror origin: %w", err)
	}
	res.Timestamp, res.UpToDate, res.Targets, res.Fetched, res.Bytes = m.Timestamp, m.UpToDate, m.Targets, m.Fetched, m.Bytes
	if m.Rebuilt > 0 {
		s.log.Info("sync: files rebuilt from deltas instead of downloaded", "files", m.Rebuilt, "deltas_recreated", m.Recreated)
	}
	for _, e := range m.DeltaErrors {
		s.log.Warn("sync: delta failed or not recreated, downloaded instead", "error", e)
	}
	if s.writer != nil && !s.writer() {
		return nil // the writer records and deploys
	}
	*wrote = true
	if s.signal != nil && !m.UpToDate {
		if err := s.signal(ctx, fmt.Sprintf("%s %d", sigVendor, m.Timestamp)); err != nil {
			s.log.Warn("tell the other server processes about the sync", "err", err)
		}
	}
	idx, err := s.localIndex(ctx, "components")
	if err != nil {
		return err
	}
	changed, err := s.record(ctx, idx)
	if err != nil {
		return err
	}
	out, err := s.content.deployed(ctx, changed)
	res.Deployed, res.Notification = changed, out.notification
	return err
}

// record stores the newest version of every component in idx and returns
// the components whose deployed version changed.
func (s *syncer) record(ctx context.Context, idx *index.Index) (map[string]string, error) {
	before, err := s.st.ListComponents(ctx)
	if err != nil {
		return nil, fmt.Errorf("record components: %w", err)
	}
	known := map[string]store.ComponentState{}
	for _, c := range before {
		known[c.Name] = c
	}
	changed := map[string]string{}
	for name, it := range idx.Items {
		old, ok := known[name]
		if ok && old.Latest == it.Version {
			continue
		}
		c, err := s.st.RecordComponentSync(ctx, name, it.Version)
		if err != nil {
			return nil, fmt.Errorf("record components: %w", err)
		}
		if c.Deployed != old.Deployed {
			changed[name] = c.Deployed
		}
	}
	return changed, nil
}

// localIndex returns the verified index of a category of the mirrored
// copy, read from disk through the trusted metadata (no network). A
// category the vendor repository lacks has an empty index.
func (s *syncer) localIndex(ctx context.Context, cat string) (*index.Index, error) {
	f := fetch.New(fetch.Options{Transport: http.NewFileTransport(http.Dir(s.dir)), MinRate: -1})
	v, err := s.trust.Probe(ctx, trust.Source{Name: "mirrored copy", Base: "http://mirror.local/"}, f)
	if err != nil {
		if failure.ClassOf(err) == failure.NotFound {
			return nil, fmt.Errorf("read mirrored %s: the origin has not been mirrored yet: %w", cat, err)
		}
		return nil, fmt.Errorf("read mirrored %s: %w", cat, err)
	}
	idx, err := v.Index(ctx, cat)
	if failure.ClassOf(err) == failure.NotFound {
		return &index.Index{Category: cat, Items: map[string]index.Item{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read mirrored %s: %w", cat, err)
	}
	return idx, nil
}

// vendorTimestamp returns the version of the mirrored vendor timestamp
// (0 before the first sync).
func (s *syncer) vendorTimestamp() int64 {
	v, _, err := s.trust.Versions()
	if err != nil {
		return 0
	}
	return v
}

// Last returns the outcome of the last sync, or nil before the first.
func (s *syncer) Last() *api.SyncResult {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.last == nil {
		return nil
	}
	r := *s.last
	return &r
}

// progress records a download's progress (mirror.Options.Progress).
func (s *syncer) progress(target string, done, total int64) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.prog != nil {
		s.prog.files[target] = [2]int64{done, total}
	}
}

// Progress returns the running sync's progress, nil when none runs.
func (s *syncer) Progress() *api.SyncProgress {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.prog == nil {
		return nil
	}
	p := &api.SyncProgress{Started: s.prog.started, Files: len(s.prog.files)}
	for _, f := range s.prog.files {
		p.BytesDone += f[0]
		p.BytesTotal += f[1]
	}
	return p
}

// Kick asks Run to sync as soon as it can.
func (s *syncer) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run syncs at once, then every interval (a minute after a failure) and
// whenever kicked, until ctx is cancelled.
func (s *syncer) Run(ctx context.Context) error {
	retry := s.retry
	if retry <= 0 {
		retry = time.Minute
	}
	for {
		next := s.interval
		if _, err := s.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			next = min(next, retry)
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-s.kick:
			t.Stop()
		}
	}
}

// errNoVendor says that approvals need the mirrored vendor repository.
var errNoVendor = errors.New("the server holds no copy of the vendor repository yet (sync from the origin first)")
