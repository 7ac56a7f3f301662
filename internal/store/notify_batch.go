package store

import (
	"context"
	"fmt"
	"strings"
)

// pendingSelect is PendingNotifications' query with the endpoint id as
// the first column, for a condition on d.endpoint_id.
const pendingSelect = `SELECT d.endpoint_id, ` + "%s" + `
	FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
	WHERE %s AND d.state = 'pending'
	AND (d.role = 'agent' OR n.clients_released_at IS NOT NULL)
	ORDER BY n.created_at, n.id`

// PendingNotificationsOf implements Notifications. On PostgreSQL the ids
// are one array parameter, one query however many they are; on SQLite
// they are read in chunks.
func (s *sqlStore) PendingNotificationsOf(ctx context.Context, endpointIDs []string) (map[string][]Notification, error) {
	op := fmt.Sprintf("list pending notifications of %d endpoints", len(endpointIDs))
	out := make(map[string][]Notification, len(endpointIDs))
	for _, e := range endpointIDs {
		out[e] = []Notification{}
	}
	read := func(cond string, args ...any) error {
		rows, err := s.r.QueryContext(ctx, s.q(fmt.Sprintf(pendingSelect, nCols, cond)), args...)
		if err != nil {
			return err
		}
		_, err = collect(rows, func(row scanner) (struct{}, error) {
			var ep string
			n, err := scanNotification(prefixScanner{row, &ep})
			if err == nil && out[ep] != nil {
				out[ep] = append(out[ep], n)
			}
			return struct{}{}, err
		})
		return err
	}
	if s.kind == dialectPostgres {
		if len(endpointIDs) > 0 {
			if err := read("d.endpoint_id = ANY(?::text[])", endpointIDs); err != nil {
				return nil, fail(op, err)
			}
		}
		return out, nil
	}
	for start := 0; start < len(endpointIDs); start += lookupChunk {
		chunk := endpointIDs[start:min(start+lookupChunk, len(endpointIDs))]
		args := make([]any, len(chunk))
		for i, e := range chunk {
			args[i] = e
		}
		if err := read("d.endpoint_id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+")", args...); err != nil {
			return nil, fail(op, err)
		}
	}
	return out, nil
}

// prefixScanner scans one leading column into first, the rest with the
// wrapped scanner's destinations.
type prefixScanner struct {
	row   scanner
	first any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.row.Scan(append([]any{p.first}, dest...)...)
}

// PendingEndpoints implements Notifications.
func (s *sqlStore) PendingEndpoints(ctx context.Context, id string, role Role) ([]string, error) {
	op := "list endpoints pending for notification " + id
	cond, args := "", []any{id}
	if role != "" {
		cond, args = " AND role = ?", append(args, string(role))
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT endpoint_id FROM notification_deliveries
		WHERE notification_id = ? AND state = 'pending'`+cond), args...)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, func(row scanner) (string, error) {
		var ep string
		err := row.Scan(&ep)
		return ep, err
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}
