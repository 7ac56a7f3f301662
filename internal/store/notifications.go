package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// notificationCols are the columns scanNotification reads, nCols the same
// for the table aliased as n.
const notificationCols = "id, created_at, versions, domain, agents_first, clients_released_at"

var nCols = prefixed("n.", notificationCols)

func scanNotification(row scanner) (Notification, error) {
	var (
		n        Notification
		versions string
	)
	err := row.Scan(&n.ID, timeCol{&n.Created}, &versions, strCol{&n.Domain}, &n.AgentsFirst, timeCol{&n.ClientsReleased})
	n.Versions = json.RawMessage(versions)
	return n, err
}

// lookupChunk bounds the ids in one "IN (...)" list.
const lookupChunk = 500

// deliveryRows returns the pending delivery rows of notification id for
// the distinct endpoints in ids that are not revoked, or ErrNotFound when
// one of ids does not exist.
func (s *sqlStore) deliveryRows(ctx context.Context, tx *sql.Tx, id string, ids []string) ([][]any, error) {
	seen := make(map[string]bool, len(ids))
	uniq := make([]string, 0, len(ids))
	for _, e := range ids {
		if !seen[e] {
			seen[e] = true
			uniq = append(uniq, e)
		}
	}
	out := make([][]any, 0, len(uniq))
	for start := 0; start < len(uniq); start += lookupChunk {
		chunk := uniq[start:min(start+lookupChunk, len(uniq))]
		args := make([]any, len(chunk))
		for i, e := range chunk {
			args[i] = e
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, role, revoked_at FROM endpoints WHERE id IN (`+
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+`)`), args...)
		if err != nil {
			return nil, err
		}
		found := 0
		_, err = collect(rows, func(row scanner) (struct{}, error) {
			var ep, role string
			var revoked time.Time
			if err := row.Scan(&ep, &role, timeCol{&revoked}); err != nil {
				return struct{}{}, err
			}
			found++
			if revoked.IsZero() {
				out = append(out, []any{id, ep, role, string(DeliveryPending)})
			}
			return struct{}{}, nil
		})
		if err != nil {
			return nil, err
		}
		if found != len(chunk) {
			return nil, fmt.Errorf("%w: %d of the endpoints do not exist", ErrNotFound, len(chunk)-found)
		}
	}
	return out, nil
}

// CreateNotification implements Notifications. Revoked endpoints among
// endpointIDs get no delivery. A notification that is not AgentsFirst has
// ClientsReleased set to Created.
func (s *sqlStore) CreateNotification(ctx context.Context, n Notification, endpointIDs []string) (Notification, error) {
	const op = "create notification"
	if len(n.Versions) == 0 || !json.Valid(n.Versions) {
		return Notification{}, fmt.Errorf("%s: %w: versions must be a JSON document", op, ErrInvalid)
	}
	n.Created, n.ClientsReleased = s.now(), timeZero
	n.ID = newID("ntf", n.Created)
	if !n.AgentsFirst {
		n.ClientsReleased = n.Created
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO notifications (id, created_at, versions, domain,
			agents_first, clients_released_at) VALUES (?, ?, ?, ?, ?, ?)`),
			n.ID, s.t(n.Created), string(n.Versions), nullStr(n.Domain), n.AgentsFirst, s.t(n.ClientsReleased)); err != nil {
			return err
		}
		rows, err := s.deliveryRows(ctx, tx, n.ID, endpointIDs)
		if err != nil {
			return err
		}
		return s.bulkInsert(ctx, tx, insertDeliveries, rows)
	})
	if err != nil {
		return Notification{}, fail(op, err)
	}
	return n, nil
}

// Notification implements Notifications.
func (s *sqlStore) Notification(ctx context.Context, id string) (Notification, error) {
	n, err := scanNotification(s.r.QueryRowContext(ctx, s.q(`SELECT `+nCols+` FROM notifications n WHERE n.id = ?`), id))
	if err != nil {
		return Notification{}, fail("get notification "+id, err)
	}
	return n, nil
}

// listNotifications runs a query for notifications.
func (s *sqlStore) listNotifications(ctx context.Context, op, query string, args ...any) ([]Notification, error) {
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, scanNotification)
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// ListNotifications implements Notifications.
func (s *sqlStore) ListNotifications(ctx context.Context, limit int) ([]Notification, error) {
	return s.listNotifications(ctx, "list notifications", `SELECT `+nCols+` FROM notifications n
		ORDER BY n.created_at DESC, n.id DESC LIMIT ?`, sqlLimit(limit))
}

// ReleaseClients implements Notifications.
func (s *sqlStore) ReleaseClients(ctx context.Context, id string) (Notification, error) {
	var n Notification
	err := s.write(ctx, func(q querier) (err error) {
		n, err = scanNotification(q.QueryRowContext(ctx, s.q(`UPDATE notifications
		SET clients_released_at = COALESCE(clients_released_at, ?) WHERE id = ? RETURNING `+notificationCols),
			s.t(s.now()), id))
		return err
	})
	if err != nil {
		return Notification{}, fail("release clients of notification "+id, err)
	}
	return n, nil
}

// PendingNotifications implements Notifications.
func (s *sqlStore) PendingNotifications(ctx context.Context, endpointID string) ([]Notification, error) {
	return s.listNotifications(ctx, "list pending notifications of endpoint "+endpointID, `SELECT `+nCols+`
		FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE d.endpoint_id = ? AND d.state = 'pending'
		AND (d.role = 'agent' OR n.clients_released_at IS NOT NULL)
		ORDER BY n.created_at, n.id`, endpointID)
}

// transitions lists, for each target state, the states it may be reached
// from.
var transitions = map[DeliveryState][]DeliveryState{
	DeliveryDelivered: {DeliveryPending},
	DeliveryDone:      {DeliveryPending, DeliveryDelivered},
	DeliveryFailed:    {DeliveryPending, DeliveryDelivered},
}

// SetDeliveryState implements Notifications.
func (s *sqlStore) SetDeliveryState(ctx context.Context, id, endpointID string, state DeliveryState, detail string) error {
	op := fmt.Sprintf("mark notification %s %s for endpoint %s", id, state, endpointID)
	from, ok := transitions[state]
	if !ok {
		return fmt.Errorf("%s: %w: target state %q", op, ErrInvalid, state)
	}
	now := s.t(s.now())
	set := "state = ?, delivered_at = COALESCE(delivered_at, ?)"
	args := []any{string(state), now}
	if state != DeliveryDelivered {
		set = "state = ?, finished_at = ?, detail = ?"
		args = []any{string(state), now, nullStr(detail)}
	}
	args = append(args, id, endpointID, string(from[0]), string(from[len(from)-1]))
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE notification_deliveries SET `+set+`
		WHERE notification_id = ? AND endpoint_id = ? AND state IN (?, ?)`), args...)
	if err == nil {
		err = affected(res)
	}
	if !errors.Is(err, ErrNotFound) {
		if err != nil {
			return fail(op, err)
		}
		return nil
	}
	var cur string
	err = s.w.QueryRowContext(ctx, s.q(`SELECT state FROM notification_deliveries
		WHERE notification_id = ? AND endpoint_id = ?`), id, endpointID).Scan(&cur)
	switch {
	case err != nil:
		return fail(op, err)
	case DeliveryState(cur) == state:
		return nil
	default:
		return fmt.Errorf("%s: %w: the delivery is %s", op, ErrConflict, cur)
	}
}

const deliveryCols = "notification_id, endpoint_id, role, state, delivered_at, finished_at, detail"

// Deliveries implements Notifications.
func (s *sqlStore) Deliveries(ctx context.Context, id string, f DeliveryFilter) ([]Delivery, error) {
	const op = "list deliveries"
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+deliveryCols+` FROM notification_deliveries
		WHERE notification_id = ? AND (? = '' OR role = ?) AND (? = '' OR state = ?)
		ORDER BY endpoint_id`), id, string(f.Role), string(f.Role), string(f.State), string(f.State))
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := collect(rows, func(row scanner) (Delivery, error) {
		var d Delivery
		var role, state string
		err := row.Scan(&d.NotificationID, &d.EndpointID, &role, &state,
			timeCol{&d.Delivered}, timeCol{&d.Finished}, strCol{&d.Detail})
		d.Role, d.State = Role(role), DeliveryState(state)
		return d, err
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// DeliveryCounts implements Notifications. The map has every role and
// state, zero counts included.
func (s *sqlStore) DeliveryCounts(ctx context.Context, id string) (map[Role]map[DeliveryState]int, error) {
	op := "count deliveries of notification " + id
	var exists int
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT 1 FROM notifications WHERE id = ?`), id).Scan(&exists); err != nil {
		return nil, fail(op, err)
	}
	out := map[Role]map[DeliveryState]int{}
	for _, r := range []Role{RoleClient, RoleAgent} {
		out[r] = map[DeliveryState]int{DeliveryPending: 0, DeliveryDelivered: 0, DeliveryDone: 0, DeliveryFailed: 0}
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT role, state, COUNT(*) FROM notification_deliveries
		WHERE notification_id = ? GROUP BY role, state`), id)
	if err != nil {
		return nil, fail(op, err)
	}
	_, err = collect(rows, func(row scanner) (struct{}, error) {
		var role, state string
		var n int
		err := row.Scan(&role, &state, &n)
		if err == nil && out[Role(role)] != nil {
			out[Role(role)][DeliveryState(state)] = n
		}
		return struct{}{}, err
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// PruneNotifications implements Notifications.
func (s *sqlStore) PruneNotifications(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM notifications WHERE created_at < ?`), s.t(before))
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return 0, fail("prune notifications", err)
	}
	return n, nil
}

// MarkDelivered implements Notifications.
func (s *sqlStore) MarkDelivered(ctx context.Context, id string, endpointIDs []string) (int64, error) {
	op := fmt.Sprintf("mark notification %s delivered to %d endpoints", id, len(endpointIDs))
	var n int64
	now := s.t(s.now())
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(endpointIDs); start += lookupChunk {
			chunk := endpointIDs[start:min(start+lookupChunk, len(endpointIDs))]
			args := make([]any, 0, len(chunk)+2)
			args = append(args, now, id)
			for _, e := range chunk {
				args = append(args, e)
			}
			res, err := tx.ExecContext(ctx, s.q(`UPDATE notification_deliveries
				SET state = 'delivered', delivered_at = COALESCE(delivered_at, ?)
				WHERE notification_id = ? AND state = 'pending' AND endpoint_id IN (`+
				strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+`)`), args...)
			if err != nil {
				return err
			}
			moved, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += moved
		}
		return nil
	})
	if err != nil {
		return 0, fail(op, err)
	}
	return n, nil
}
