package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
)

// Status is what an agent serves and to how many, as persisted in
// StateDir/status.json for `cascade endpoint status` (which reads it
// without the daemon's lock). Counters are since the daemon started.
type Status struct {
	ID      string    `json:"id"`
	Listen  string    `json:"listen,omitempty"`
	TLS     bool      `json:"tls,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Saved   time.Time `json:"saved,omitzero"`
	// Repositories are the served repositories by kind (vendor, site).
	Repositories map[string]*RepoStatus `json:"repositories"`

	Requests        int64 `json:"requests"`
	BytesServed     int64 `json:"bytes_served"`
	NotModified     int64 `json:"not_modified"`
	Unavailable     int64 `json:"unavailable"`
	UpstreamFetches int64 `json:"upstream_fetches"`
	Clients         int64 `json:"clients"`
	// PeakDownloads is the most downloads served at once.
	PeakDownloads int64 `json:"peak_downloads"`
}

// RepoStatus is what the agent serves of one repository.
type RepoStatus struct {
	Timestamp int64 `json:"timestamp"`
	Snapshot  int64 `json:"snapshot"`
	// Source and SourceURL are where the last successful refresh copied
	// from; pull-throughs go there.
	Source    string    `json:"source,omitempty"`
	SourceURL string    `json:"source_url,omitempty"`
	Refreshed time.Time `json:"refreshed,omitzero"`
	// Items are the newest version of every item, by category.
	Items map[string]map[string]string `json:"items,omitempty"`
	// Error is the last refresh's failure, cleared by a success.
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"error_at,omitzero"`
}

// maxStatusSize caps the status file read.
const maxStatusSize = 4 << 20

// ReadStatus reads the status file of the agent whose state directory is
// stateDir; (nil, nil) if there is none yet.
func ReadStatus(stateDir string) (*Status, error) {
	f, err := os.Open(filepath.Join(stateDir, StatusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read agent status: %w", err)
	}
	defer f.Close()
	var st Status
	if err := json.NewDecoder(io.LimitReader(f, maxStatusSize)).Decode(&st); err != nil {
		return nil, fmt.Errorf("read agent status: %w", err)
	}
	return &st, nil
}

// repoStatus returns the status entry of kind, creating it. Callers hold
// a.mu.
func (a *Agent) repoStatus(kind string) *RepoStatus {
	if a.status.Repositories == nil {
		a.status.Repositories = map[string]*RepoStatus{}
	}
	rs := a.status.Repositories[kind]
	if rs == nil {
		rs = &RepoStatus{}
		a.status.Repositories[kind] = rs
	}
	return rs
}

func (a *Agent) setRepoError(kind string, err error) {
	a.mu.Lock()
	rs := a.repoStatus(kind)
	rs.Error, rs.ErrorAt = err.Error(), a.o.Now().UTC()
	a.mu.Unlock()
	a.saveStatus()
}

// loadStatus reads the previous status file, for the repositories'
// sources; counters start from zero.
func (a *Agent) loadStatus() {
	st, err := ReadStatus(a.o.StateDir)
	if err != nil {
		a.log.Warn("agent: previous status unreadable", "error", err)
	}
	if st != nil {
		a.status.Repositories = st.Repositories
	}
	a.status.ID = a.o.ID
}

// Status returns the agent's current status.
func (a *Agent) Status() Status {
	a.mu.Lock()
	st := a.status
	st.Repositories = map[string]*RepoStatus{}
	for k, v := range a.status.Repositories {
		c := *v
		st.Repositories[k] = &c
	}
	a.mu.Unlock()
	m := a.m
	st.Requests, st.BytesServed, st.NotModified = m.nRequests.Load(), m.nBytes.Load(), m.nNotModified.Load()
	st.Unavailable, st.UpstreamFetches, st.Clients = m.nUnavailable.Load(), m.nUpstream.Load(), m.nClients.Load()
	st.PeakDownloads = m.peak.Load()
	st.Saved = a.o.Now().UTC()
	return st
}

// saveStatus writes the status file atomically and durably (best effort:
// it is informational).
func (a *Agent) saveStatus() {
	st := a.Status()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(a.o.StateDir, 0o755); err != nil {
		a.log.Warn("agent: save status", "error", err)
		return
	}
	if err := atomicfile.WriteFile(filepath.Join(a.o.StateDir, StatusFile), append(b, '\n'), 0o600); err != nil {
		a.log.Warn("agent: save status failed", "dir", a.o.StateDir, "error", err)
	}
}
