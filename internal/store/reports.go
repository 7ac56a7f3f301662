package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/category"
)

// jsonOrNull encodes v as JSON text, a nil map as NULL.
func jsonOrNull(m map[string]string) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// reportRows validates reports, fills their ID and ReceivedAt, and returns
// the rows of reports and report_categories.
func (s *sqlStore) reportRows(reports []Report) (reps, cats [][]any, err error) {
	now := s.now()
	reps = make([][]any, 0, len(reports))
	for i := range reports {
		r := &reports[i]
		if r.EndpointID == "" {
			return nil, nil, fmt.Errorf("report %d: %w: no endpoint id", i, ErrInvalid)
		}
		if len(r.Document) > 0 && !json.Valid(r.Document) {
			return nil, nil, fmt.Errorf("report %d: %w: document is not JSON", i, ErrInvalid)
		}
		r.ReceivedAt = normTime(r.ReceivedAt)
		if r.ReceivedAt.IsZero() {
			r.ReceivedAt = now
		}
		r.ID = newID("rpt", r.ReceivedAt)
		var doc any
		if len(r.Document) > 0 {
			doc = string(r.Document)
		}
		reps = append(reps, []any{r.ID, r.EndpointID, s.t(r.ReceivedAt), r.Trigger,
			s.t(r.Started), s.t(r.Finished), r.Result, doc})
		seen := map[category.Category]bool{}
		for _, c := range r.Categories {
			if _, err := category.Parse(string(c.Category)); err != nil || seen[c.Category] {
				return nil, nil, fmt.Errorf("report %d: %w: category %q unknown or repeated", i, ErrInvalid, c.Category)
			}
			seen[c.Category] = true
			before, err1 := jsonOrNull(c.VersionsBefore)
			after, err2 := jsonOrNull(c.VersionsAfter)
			if err1 != nil || err2 != nil {
				return nil, nil, fmt.Errorf("report %d: encode versions: %w %w", i, err1, err2)
			}
			cats = append(cats, []any{r.ID, string(c.Category), c.Result, nullStr(c.Source), before, after, c.Bytes, c.FullBytes})
		}
	}
	return reps, cats, nil
}

// lastRows returns, per endpoint, the row of last_reports for its newest
// report in reports (a later one wins a tie).
func (s *sqlStore) lastRows(reports []Report) [][]any {
	newest := map[string]int{}
	order := []string{}
	for i, r := range reports {
		j, ok := newest[r.EndpointID]
		if !ok {
			order = append(order, r.EndpointID)
		}
		if !ok || !r.ReceivedAt.Before(reports[j].ReceivedAt) {
			newest[r.EndpointID] = i
		}
	}
	rows := make([][]any, 0, len(order))
	for _, ep := range order {
		r := reports[newest[ep]]
		rows = append(rows, []any{ep, r.ID, s.t(r.ReceivedAt)})
	}
	return rows
}

// AddReports implements Reports.
func (s *sqlStore) AddReports(ctx context.Context, reports []Report) error {
	op := fmt.Sprintf("add %d reports", len(reports))
	if len(reports) == 0 {
		return nil
	}
	reps, cats, err := s.reportRows(reports)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	last := s.lastRows(reports)
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if s.kind == dialectPostgres {
			// Reports are telemetry: don't wait for the WAL flush.
			if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit TO OFF"); err != nil {
				return err
			}
		}
		if err := s.bulkInsert(ctx, tx, insertReports, reps); err != nil {
			return err
		}
		if err := s.bulkInsert(ctx, tx, insertReportCategories, cats); err != nil {
			return err
		}
		return s.bulkInsert(ctx, tx, upsertLastReports, last)
	})
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// reportCols and categoryCols are what scanReports reads: reports aliased
// r (with a column "document", possibly NULL), report_categories c.
const (
	reportCols   = "r.id, r.endpoint_id, r.received_at, r.trigger_kind, r.started_at, r.finished_at, r.result"
	categoryCols = "c.category, c.result, c.source, c.versions_before, c.versions_after, c.bytes, c.full_bytes"
)

// scanReports reads rows of reportCols, a document and categoryCols (from
// a LEFT JOIN, so NULL when a report has no categories), ordered so that
// the rows of one report are adjacent.
func scanReports(rows *sql.Rows) ([]Report, error) {
	defer rows.Close()
	out := []Report{}
	for rows.Next() {
		var (
			r                     Report
			doc                   string
			cat, res, src, vb, va sql.NullString
			n, full               sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &r.EndpointID, timeCol{&r.ReceivedAt}, &r.Trigger, timeCol{&r.Started},
			timeCol{&r.Finished}, &r.Result, strCol{&doc}, &cat, &res, &src, &vb, &va, &n, &full); err != nil {
			return nil, err
		}
		if k := len(out); k == 0 || out[k-1].ID != r.ID {
			if doc != "" {
				r.Document = json.RawMessage(doc)
			}
			out = append(out, r)
		}
		if !cat.Valid {
			continue
		}
		c := CategoryReport{Category: category.Category(cat.String), Result: res.String, Source: src.String, Bytes: n.Int64, FullBytes: full.Int64}
		for _, v := range []struct {
			s   sql.NullString
			dst *map[string]string
		}{{vb, &c.VersionsBefore}, {va, &c.VersionsAfter}} {
			if v.s.Valid {
				if err := json.Unmarshal([]byte(v.s.String), v.dst); err != nil {
					return nil, fmt.Errorf("report %s: decode versions: %w", r.ID, err)
				}
			}
		}
		last := &out[len(out)-1]
		last.Categories = append(last.Categories, c)
	}
	return out, rows.Err()
}

// queryReports runs a query whose rows scanReports reads.
func (s *sqlStore) queryReports(ctx context.Context, query string, args ...any) ([]Report, error) {
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	return scanReports(rows)
}

// oneReport runs a query for at most one report.
func (s *sqlStore) oneReport(ctx context.Context, op, query string, args ...any) (Report, error) {
	out, err := s.queryReports(ctx, query, args...)
	if err == nil && len(out) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return Report{}, fail(op, err)
	}
	return out[0], nil
}

// Report implements Reports.
func (s *sqlStore) Report(ctx context.Context, id string) (Report, error) {
	return s.oneReport(ctx, "get report "+id, `SELECT `+reportCols+`, r.document, `+categoryCols+`
		FROM reports r LEFT JOIN report_categories c ON c.report_id = r.id
		WHERE r.id = ? ORDER BY c.category`, id)
}

// LastReport implements Reports.
func (s *sqlStore) LastReport(ctx context.Context, endpointID string) (Report, error) {
	return s.oneReport(ctx, "get last report of endpoint "+endpointID, `SELECT `+reportCols+`, r.document, `+categoryCols+`
		FROM last_reports l JOIN reports r ON r.id = l.report_id
		LEFT JOIN report_categories c ON c.report_id = r.id
		WHERE l.endpoint_id = ? ORDER BY c.category`, endpointID)
}

// LastReports implements Reports.
func (s *sqlStore) LastReports(ctx context.Context, f EndpointFilter) ([]Report, error) {
	doc := "NULL AS document"
	if f.WithDocument {
		doc = "r.document"
	}
	where, args := endpointWhere(f, false)
	out, err := s.queryReports(ctx, `SELECT `+reportCols+`, `+doc+`, `+categoryCols+`
		FROM (SELECT e.id AS endpoint_id, l.report_id FROM endpoints e
			JOIN last_reports l ON l.endpoint_id = e.id
			WHERE `+where+` ORDER BY e.id LIMIT ?) p
		JOIN reports r ON r.id = p.report_id
		LEFT JOIN report_categories c ON c.report_id = r.id
		ORDER BY p.endpoint_id, c.category`, append(args, sqlLimit(f.Limit))...)
	if err != nil {
		return nil, fail("list last reports", err)
	}
	return out, nil
}

// ListReports implements Reports.
func (s *sqlStore) ListReports(ctx context.Context, f ReportFilter) ([]Report, error) {
	var (
		conds []string
		args  []any
	)
	if f.EndpointID != "" {
		conds, args = append(conds, "endpoint_id = ?"), append(args, f.EndpointID)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "received_at >= ?"), append(args, s.t(f.Since))
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "received_at < ?"), append(args, s.t(f.Until))
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	out, err := s.queryReports(ctx, `SELECT `+reportCols+`, NULL AS document, `+categoryCols+`
		FROM (SELECT * FROM reports `+where+` ORDER BY received_at DESC, id DESC LIMIT ?) r
		LEFT JOIN report_categories c ON c.report_id = r.id
		ORDER BY r.received_at DESC, r.id DESC, c.category`, append(args, sqlLimit(f.Limit))...)
	if err != nil {
		return nil, fail("list reports", err)
	}
	return out, nil
}

// pruneBatch bounds how many reports one DELETE removes, so that pruning a
// long history never holds SQLite's write lock for long.
const pruneBatch = 2000

// PruneReports implements Reports.
func (s *sqlStore) PruneReports(ctx context.Context, before time.Time) (int64, error) {
	op := "prune reports before " + before.UTC().Format(time.RFC3339)
	var total int64
	for {
		res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM reports WHERE id IN (
			SELECT id FROM reports r WHERE r.received_at < ?
			AND NOT EXISTS (SELECT 1 FROM last_reports l WHERE l.report_id = r.id)
			LIMIT ?)`), s.t(before), pruneBatch)
		if err != nil {
			return total, fail(op, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fail(op, err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
