package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SyncResult is how a sync from the origin ended.
type SyncResult string

// The results of a sync.
const (
	SyncSucceeded SyncResult = "succeeded"
	SyncFailed    SyncResult = "failed"
	SyncUpToDate  SyncResult = "up to date" // succeeded; the mirror had everything
)

// SyncRecord is one entry of the sync log: one sync from the origin run by
// one server process.
type SyncRecord struct {
	ID       string // assigned by RecordSync
	Started  time.Time
	Finished time.Time
	Result   SyncResult
	Error    string // why it failed ("" unless Result is SyncFailed)
	// Timestamp is the version of the origin's timestamp it mirrored.
	Timestamp int64
	Targets   int
	Fetched   int
	Bytes     int64
	// Deployed are the components whose deployed version the sync changed
	// (nil: none).
	Deployed map[string]string
	// Server names the process that ran the sync (its URL).
	Server string
	// Writer says whether that process was the writer, which alone
	// records and deploys what a sync brings; the others only mirror.
	Writer bool
}

// Syncs is the sync log: the syncs from the origin the server processes
// ran, kept for the report retention.
type Syncs interface {
	// RecordSync adds r to the log and returns it with its ID. A zero
	// Started or Finished, or a Result other than the three known:
	// ErrInvalid.
	RecordSync(ctx context.Context, r SyncRecord) (SyncRecord, error)
	// ListSyncs returns at most limit syncs (all when <= 0), the most
	// recently finished first.
	ListSyncs(ctx context.Context, limit int) ([]SyncRecord, error)
	// PruneSyncs deletes the syncs finished before `before` and returns
	// how many it deleted.
	PruneSyncs(ctx context.Context, before time.Time) (int64, error)
}

const syncCols = "id, started_at, finished_at, result, error, timestamp, targets, fetched, bytes, deployed, server, writer"

// RecordSync implements Syncs.
func (s *sqlStore) RecordSync(ctx context.Context, r SyncRecord) (SyncRecord, error) {
	op := "record sync log entry"
	switch {
	case r.Started.IsZero() || r.Finished.IsZero():
		return SyncRecord{}, fmt.Errorf("%s: %w: start and finish times are required", op, ErrInvalid)
	case r.Result != SyncSucceeded && r.Result != SyncFailed && r.Result != SyncUpToDate:
		return SyncRecord{}, fmt.Errorf("%s: %w: unknown result %q", op, ErrInvalid, r.Result)
	}
	var deployed any
	if len(r.Deployed) > 0 {
		b, err := json.Marshal(r.Deployed)
		if err != nil {
			return SyncRecord{}, fmt.Errorf("%s: %w", op, err)
		}
		deployed = string(b)
	} else {
		r.Deployed = nil
	}
	r.ID = newID("syn", r.Finished)
	r.Started, r.Finished = normTime(r.Started), normTime(r.Finished)
	if _, err := s.w.ExecContext(ctx, s.q(`INSERT INTO syncs (`+syncCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, s.t(r.Started), s.t(r.Finished), string(r.Result), r.Error, r.Timestamp, r.Targets, r.Fetched, r.Bytes,
		deployed, r.Server, r.Writer); err != nil {
		return SyncRecord{}, fail(op, err)
	}
	return r, nil
}

// ListSyncs implements Syncs.
func (s *sqlStore) ListSyncs(ctx context.Context, limit int) ([]SyncRecord, error) {
	op := "list the sync log"
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+syncCols+` FROM syncs ORDER BY finished_at DESC, id DESC LIMIT ?`), sqlLimit(limit))
	if err != nil {
		return nil, fail(op, err)
	}
	defer rows.Close()
	out := []SyncRecord{}
	for rows.Next() {
		var r SyncRecord
		var result string
		var deployed *string
		if err := rows.Scan(&r.ID, timeCol{&r.Started}, timeCol{&r.Finished}, &result, &r.Error, &r.Timestamp,
			&r.Targets, &r.Fetched, &r.Bytes, &deployed, &r.Server, &r.Writer); err != nil {
			return nil, fail(op, err)
		}
		r.Result = SyncResult(result)
		if deployed != nil {
			if err := json.Unmarshal([]byte(*deployed), &r.Deployed); err != nil {
				return nil, fmt.Errorf("%s: deployed components of %s: %w", op, r.ID, err)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// PruneSyncs implements Syncs.
func (s *sqlStore) PruneSyncs(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM syncs WHERE finished_at < ?`), s.t(before))
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return 0, fail("prune the sync log", err)
	}
	return n, nil
}
