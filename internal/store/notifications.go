package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// insertDeliveriesFor writes within tx a pending delivery of
// notification id for each distinct endpoint of ids that is not revoked,
// or fails with ErrNotFound when one of ids does not exist. On
// PostgreSQL the ids are one array parameter and the database makes the
// rows from the endpoints table, in one statement however many they are;
// on SQLite (one process, statements cost no round trip) they are read
// in chunks and written in bulk.
func (s *sqlStore) insertDeliveriesFor(ctx context.Context, tx *sql.Tx, id string, ids []string) error {
	if s.kind != dialectPostgres {
		rows, err := s.deliveryRows(ctx, tx, id, ids)
		if err != nil {
			return err
		}
		return s.bulkInsert(ctx, tx, insertDeliveries, rows)
	}
	if ids == nil {
		ids = []string{} // an empty array, not NULL
	}
	var unknown int
	err := tx.QueryRowContext(ctx, `WITH u AS (SELECT DISTINCT unnest($2::text[]) AS id),
		f AS (SELECT e.id, e.role, e.revoked_at FROM u JOIN endpoints e ON e.id = u.id),
		ins AS (INSERT INTO notification_deliveries (notification_id, endpoint_id, role, state)
			SELECT $1, f.id, f.role, 'pending' FROM f WHERE f.revoked_at IS NULL)
		SELECT (SELECT count(*) FROM u) - (SELECT count(*) FROM f)`, id, ids).Scan(&unknown)
	if err != nil {
		return err
	}
	if unknown > 0 {
		return fmt.Errorf("%w: %d of the endpoints do not exist", ErrNotFound, unknown)
	}
	return nil
}

// insertNotification inserts n, made by newNotification, within tx.
func (s *sqlStore) insertNotification(ctx context.Context, tx *sql.Tx, n Notification) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO notifications (id, created_at, versions, domain,
		agents_first, clients_released_at) VALUES (?, ?, ?, ?, ?, ?)`),
		n.ID, s.t(n.Created), string(n.Versions), nullStr(n.Domain), n.AgentsFirst, s.t(n.ClientsReleased))
	return err
}

// newNotification checks n and sets its ID, Created and ClientsReleased.
func (s *sqlStore) newNotification(op string, n Notification) (Notification, error) {
	if len(n.Versions) == 0 || !json.Valid(n.Versions) {
		return Notification{}, fmt.Errorf("%s: %w: versions must be a JSON document", op, ErrInvalid)
	}
	n.Created, n.ClientsReleased = s.now(), timeZero
	n.ID = newID("ntf", n.Created)
	if !n.AgentsFirst {
		n.ClientsReleased = n.Created
	}
	return n, nil
}

// CreateNotification implements Notifications. Revoked endpoints among
// endpointIDs get no delivery. A notification that is not AgentsFirst has
// ClientsReleased set to Created. On PostgreSQL the transaction also
// sends "created ID" on TopicNotifications.
func (s *sqlStore) CreateNotification(ctx context.Context, n Notification, endpointIDs []string) (Notification, error) {
	const op = "create notification"
	n, err := s.newNotification(op, n)
	if err != nil {
		return Notification{}, err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.insertNotification(ctx, tx, n); err != nil {
			return err
		}
		if err := s.insertDeliveriesFor(ctx, tx, n.ID, endpointIDs); err != nil {
			return err
		}
		return s.signal(ctx, tx, TopicNotifications, "created "+n.ID)
	})
	if err != nil {
		return Notification{}, fail(op, err)
	}
	return n, nil
}

// CreateDomainNotification implements Notifications. The deliveries are
// made by one INSERT ... SELECT from the endpoints table: no endpoint is
// read into the process, whatever their number. On PostgreSQL the
// transaction also sends "created ID" on TopicNotifications.
func (s *sqlStore) CreateDomainNotification(ctx context.Context, n Notification) (Notification, int, error) {
	op := "create notification for every endpoint"
	if n.Domain != "" {
		op = "create notification for domain " + n.Domain
	}
	n, err := s.newNotification(op, n)
	if err != nil {
		return Notification{}, 0, err
	}
	where, args := "e.revoked_at IS NULL", []any{n.ID}
	if n.Domain != "" {
		where, args = where+" AND e.domain = ?", append(args, n.Domain)
	}
	var total, agents int
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.insertNotification(ctx, tx, n); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO notification_deliveries (notification_id, endpoint_id, role, state)
			SELECT ?, e.id, e.role, 'pending' FROM endpoints e WHERE `+where), args...); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*), COUNT(CASE WHEN role = 'agent' THEN 1 END)
			FROM notification_deliveries WHERE notification_id = ?`), n.ID).Scan(&total, &agents); err != nil {
			return err
		}
		if n.AgentsFirst && agents == 0 {
			// No agent to wait for: released to everyone at once.
			n.AgentsFirst, n.ClientsReleased = false, n.Created
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE notifications SET agents_first = ?, clients_released_at = ?
				WHERE id = ?`), false, s.t(n.ClientsReleased), n.ID); err != nil {
				return err
			}
		}
		return s.signal(ctx, tx, TopicNotifications, "created "+n.ID)
	})
	if err != nil {
		return Notification{}, 0, fail(op, err)
	}
	return n, total, nil
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
	n, _, err := s.ReleaseClientsIf(ctx, id, ReleaseAlways)
	return n, err
}

// ReleaseCondition is what the agent deliveries of a notification must be
// for ReleaseClientsIf to release its clients.
type ReleaseCondition int

const (
	// ReleaseAlways releases whatever the agents' state (the agent
	// timeout passed).
	ReleaseAlways ReleaseCondition = iota
	// ReleaseAgentsFinished releases when no agent delivery is pending
	// or delivered: every notified agent reported.
	ReleaseAgentsFinished
	// ReleaseNoAgentRunning releases when no agent delivery is delivered:
	// every agent the notification reached reported; those still pending
	// are offline.
	ReleaseNoAgentRunning
)

// ReleaseClientsIf implements Notifications. The release and its signal
// (TopicNotifications, "released ID") are one transaction.
func (s *sqlStore) ReleaseClientsIf(ctx context.Context, id string, cond ReleaseCondition) (Notification, bool, error) {
	op := "release clients of notification " + id
	var holding []any
	switch cond {
	case ReleaseAlways:
	case ReleaseAgentsFinished:
		holding = []any{string(DeliveryPending), string(DeliveryDelivered)}
	case ReleaseNoAgentRunning:
		holding = []any{string(DeliveryDelivered), string(DeliveryDelivered)}
	default:
		return Notification{}, false, fmt.Errorf("%s: %w: release condition %d", op, ErrInvalid, cond)
	}
	where := "id = ? AND clients_released_at IS NULL"
	args := []any{s.t(s.now()), id}
	if holding != nil {
		where += ` AND NOT EXISTS (SELECT 1 FROM notification_deliveries d
			WHERE d.notification_id = notifications.id AND d.role = 'agent' AND d.state IN (?, ?))`
		args = append(args, holding...)
	}
	var (
		n        Notification
		released bool
	)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = scanNotification(tx.QueryRowContext(ctx, s.q(`UPDATE notifications
			SET clients_released_at = ? WHERE `+where+` RETURNING `+notificationCols), args...))
		if err == nil {
			released = true
			return s.signal(ctx, tx, TopicNotifications, "released "+id)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		n, err = scanNotification(tx.QueryRowContext(ctx, s.q(`SELECT `+notificationCols+` FROM notifications WHERE id = ?`), id))
		return err
	})
	if err != nil {
		return Notification{}, false, fail(op, err)
	}
	return n, released, nil
}

// PendingNotifications implements Notifications.
func (s *sqlStore) PendingNotifications(ctx context.Context, endpointID string) ([]Notification, error) {
	return s.listNotifications(ctx, "list pending notifications of endpoint "+endpointID, `SELECT `+nCols+`
		FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE d.endpoint_id = ? AND d.state = 'pending'
		AND (d.role = 'agent' OR n.clients_released_at IS NOT NULL)
		ORDER BY n.created_at, n.id`, endpointID)
}

// DeliveredAfter implements Notifications.
func (s *sqlStore) DeliveredAfter(ctx context.Context, endpointID, after string, limit int) ([]Notification, error) {
	out, err := s.listNotifications(ctx, "list notifications delivered to endpoint "+endpointID, `SELECT `+nCols+`
		FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE d.endpoint_id = ? AND d.state = 'delivered'
		AND NOT EXISTS (SELECT 1 FROM notifications a WHERE a.id = ?
			AND (a.created_at > n.created_at OR (a.created_at = n.created_at AND a.id >= n.id)))
		ORDER BY n.created_at DESC, n.id DESC LIMIT ?`, endpointID, after, sqlLimit(limit))
	slices.Reverse(out)
	return out, err
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

// forgetHubs is how long BeatHub keeps the record of a hub stopped or
// silent.
const forgetHubs = 24 * time.Hour

// BeatHub implements Notifications.
func (s *sqlStore) BeatHub(ctx context.Context, id string, stopped bool, silence time.Duration) (time.Time, error) {
	op := "record notification hub " + id
	if id == "" {
		return time.Time{}, fmt.Errorf("%s: %w: empty id", op, ErrInvalid)
	}
	now := s.now()
	var stop any
	if stopped {
		stop = s.t(now)
	}
	var last time.Time
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO notification_hubs (id, seen_at, stopped_at) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, stopped_at = excluded.stopped_at`),
			id, s.t(now), stop); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM notification_hubs WHERE COALESCE(stopped_at, seen_at) < ?`),
			s.t(now.Add(-forgetHubs))); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.q(`SELECT MAX(CASE WHEN stopped_at IS NOT NULL THEN stopped_at
			WHEN seen_at < ? THEN seen_at END) FROM notification_hubs WHERE id <> ?`),
			s.t(now.Add(-silence)), id).Scan(timeCol{&last})
	})
	if err != nil {
		return time.Time{}, fail(op, err)
	}
	return last, nil
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
	if s.kind == dialectPostgres {
		// One statement, the ids one array parameter.
		res, err := s.w.ExecContext(ctx, `UPDATE notification_deliveries
			SET state = 'delivered', delivered_at = COALESCE(delivered_at, $1)
			WHERE notification_id = $2 AND state = 'pending' AND endpoint_id = ANY($3::text[])`, now, id, endpointIDs)
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			return 0, fail(op, err)
		}
		return n, nil
	}
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
