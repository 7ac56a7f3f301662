package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// bulkTable is a multi-row INSERT: head "INSERT INTO t (a, b) VALUES ",
// then rows of cols placeholders, then tail (an ON CONFLICT clause or "").
type bulkTable struct {
	head, tail string
	cols       int
}

// The tables written in bulk.
var (
	insertReports = bulkTable{head: `INSERT INTO reports (id, endpoint_id, received_at, trigger_kind,
		started_at, finished_at, result, document) VALUES `, cols: 8}
	insertReportCategories = bulkTable{head: `INSERT INTO report_categories (report_id, category, result, source,
		versions_before, versions_after, bytes, full_bytes) VALUES `, cols: 8}
	upsertLastReports = bulkTable{head: `INSERT INTO last_reports (endpoint_id, report_id, received_at) VALUES `,
		tail: ` ON CONFLICT (endpoint_id) DO UPDATE SET report_id = excluded.report_id, received_at = excluded.received_at
		WHERE excluded.received_at >= last_reports.received_at`, cols: 3}
	insertDeliveries = bulkTable{head: `INSERT INTO notification_deliveries (notification_id, endpoint_id, role, state) VALUES `,
		cols: 4}
	insertEndpoints = bulkTable{head: `INSERT INTO endpoints (id, hostname, domain, role, agent_id, agent_url,
		addresses, credential_hash, enrolled_at, last_seen_at, installed) VALUES `, cols: 11}
	bulkTables = []bulkTable{insertReports, insertReportCategories, upsertLastReports, insertDeliveries, insertEndpoints}
)

// bulkRows is the most rows one statement carries: enough to amortise a
// statement's round trip and execution overhead, and far below both
// databases' parameter limits (8 columns x 256 rows = 2048 parameters).
// A batch is split into statements of bulkRows, then of the powers of two
// below it, so that a handful of statement shapes per table cover every
// batch size and can stay prepared.
const bulkRows = 256

// query returns the statement inserting n rows, placeholders as "?".
func (b bulkTable) query(n int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", b.cols), ",") + ")"
	return b.head + strings.TrimSuffix(strings.Repeat(one+",", n), ",") + b.tail
}

// chunkSizes returns how bulkInsert splits n rows.
func chunkSizes(n int) []int {
	var out []int
	for size := bulkRows; n > 0; size /= 2 {
		for n >= size {
			out = append(out, size)
			n -= size
		}
	}
	return out
}

// prepareBulk prepares every bulk statement on SQLite's writer connection,
// where parsing them would otherwise cost as much as running them.
// (PostgreSQL's driver keeps its own cache of prepared statements.)
func (s *sqlStore) prepareBulk(ctx context.Context) error {
	s.stmts = map[string]*sql.Stmt{}
	for _, b := range bulkTables {
		for n := bulkRows; n >= 1; n /= 2 {
			q := b.query(n)
			st, err := s.w.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("prepare bulk insert: %w", err)
			}
			s.stmts[q] = st
		}
	}
	return nil
}

// bulkInsert inserts rows (each holding b.cols values) within tx.
func (s *sqlStore) bulkInsert(ctx context.Context, tx *sql.Tx, b bulkTable, rows [][]any) error {
	args := make([]any, 0, min(len(rows), bulkRows)*b.cols)
	for _, n := range chunkSizes(len(rows)) {
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		rows = rows[n:]
		q := b.query(n)
		var err error
		if st := s.stmts[q]; st != nil {
			_, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, s.q(q), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
