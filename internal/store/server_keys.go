package store

import (
	"context"
	"fmt"
	"time"
)

// ServerKey is the TLS key fingerprint of one of the site's server
// processes, as the process recorded it when it started.
type ServerKey struct {
	// Fingerprint is the key's fingerprint ("sha256:...").
	Fingerprint string
	// URL is the base URL the process was configured with.
	URL      string
	Recorded time.Time
}

// RecordServerKey implements Cluster.
func (s *sqlStore) RecordServerKey(ctx context.Context, k ServerKey) error {
	if k.Fingerprint == "" {
		return fmt.Errorf("record server key: %w: no fingerprint", ErrInvalid)
	}
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO server_keys (fingerprint, url, recorded_at) VALUES (?, ?, ?)
		ON CONFLICT (fingerprint) DO UPDATE SET url = excluded.url, recorded_at = excluded.recorded_at`),
		k.Fingerprint, k.URL, s.t(s.now()))
	if err != nil {
		return fmt.Errorf("record server key %s: %w", k.Fingerprint, translate(err))
	}
	return nil
}

// ServerKeys implements Cluster.
func (s *sqlStore) ServerKeys(ctx context.Context) ([]ServerKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT fingerprint, url, recorded_at FROM server_keys ORDER BY recorded_at, fingerprint`)
	if err != nil {
		return nil, fmt.Errorf("list server keys: %w", translate(err))
	}
	defer rows.Close()
	var out []ServerKey
	for rows.Next() {
		var k ServerKey
		if err := rows.Scan(&k.Fingerprint, &k.URL, timeCol{&k.Recorded}); err != nil {
			return nil, fmt.Errorf("list server keys: %w", translate(err))
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list server keys: %w", translate(err))
	}
	return out, nil
}

// ForgetServerKey implements Cluster. An audit entry in ctx
// (WithAudit) is recorded in the same transaction.
func (s *sqlStore) ForgetServerKey(ctx context.Context, fingerprint string) error {
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, s.q(`DELETE FROM server_keys WHERE fingerprint = ?`), fingerprint)
		if err == nil {
			err = affected(res)
		}
		return err
	})
	return fail("forget server key "+fingerprint, err)
}
