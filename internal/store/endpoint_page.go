package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// EndpointQuery selects, orders and pages endpoints for a listing (the
// console's endpoint list). Revoked endpoints are never listed. Zero
// fields do not filter.
type EndpointQuery struct {
	Role Role
	// Text matches, case-insensitively, a substring of the hostname, the
	// id, the agent id or the reported addresses.
	Text string
	// Failing keeps endpoints whose last report's result is "failed".
	Failing bool
	// NoReport keeps endpoints that never reported.
	NoReport bool
	// SeenBefore keeps endpoints last seen before it ("not seen for N
	// days").
	SeenBefore time.Time
	// AddrFrom and AddrTo, when valid, keep endpoints with at least one
	// reported address in the inclusive range AddrFrom-AddrTo, of one
	// family as internal/policy's ranges are (an IPv4-mapped IPv6 address
	// counts as IPv4; an IPv6 range matches IPv6 addresses only). One
	// without the other, or a range mixing families, is ErrInvalid.
	AddrFrom, AddrTo netip.Addr
	// IDs, when non-nil, keeps only these endpoints (an empty slice keeps
	// none).
	IDs []string
	// Sort is "hostname" (the default), "last_seen", "role" or "id"; the id
	// breaks ties. Desc reverses the order.
	Sort string
	Desc bool
	// Offset and Limit page the result (Limit <= 0: no limit).
	Offset, Limit int
}

// EndpointRow is one endpoint of a listing with its last report's summary.
type EndpointRow struct {
	Endpoint
	LastReport Report // without Document; zero ID when it never reported
}

// EndpointPages lists endpoints a page at a time.
type EndpointPages interface {
	// QueryEndpoints returns the page of endpoints matching q in q's order
	// and how many match in total. Each row carries the endpoint's last
	// report (categories included, document not). An unknown Sort is
	// ErrInvalid.
	QueryEndpoints(ctx context.Context, q EndpointQuery) ([]EndpointRow, int, error)
}

// QueryEndpoints implements EndpointPages.
func (s *sqlStore) QueryEndpoints(ctx context.Context, q EndpointQuery) ([]EndpointRow, int, error) {
	const op = "query endpoints"
	order := map[string]string{"": "e.hostname", "hostname": "e.hostname", "last_seen": "e.last_seen_at", "role": "e.role", "id": "e.id"}[q.Sort]
	if order == "" {
		return nil, 0, fmt.Errorf("%s: %w: sort %q (want hostname, last_seen, role or id)", op, ErrInvalid, q.Sort)
	}
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	where := []string{"e.revoked_at IS NULL"}
	var args []any
	if q.Role != "" {
		where, args = append(where, "e.role = ?"), append(args, string(q.Role))
	}
	if t := strings.ToLower(strings.TrimSpace(q.Text)); t != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(t) + "%"
		if utf8.RuneCountInString(t) >= 3 {
			// The trigram index of migration 0016 narrows the rows the
			// LIKE conditions read (a superset of theirs: a field holding
			// t holds its trigrams; the fields joined hold each field).
			if s.kind == dialectPostgres {
				where = append(where, `LOWER(e.hostname || ' ' || e.id || ' ' || COALESCE(e.agent_id, '') || ' ' || e.addresses) LIKE ?`)
				args = append(args, like)
			} else {
				where = append(where, `e.id IN (SELECT k.endpoint_id FROM endpoint_search_keys k
					WHERE k.key IN (SELECT rowid FROM endpoint_search WHERE endpoint_search MATCH ?))`)
				args = append(args, `"`+strings.ReplaceAll(t, `"`, `""`)+`"`)
			}
		}
		where = append(where, `(LOWER(e.hostname) LIKE ? ESCAPE '\' OR LOWER(e.id) LIKE ? ESCAPE '\'
			OR LOWER(COALESCE(e.agent_id, '')) LIKE ? ESCAPE '\' OR LOWER(e.addresses) LIKE ? ESCAPE '\')`)
		args = append(args, like, like, like, like)
	}
	if q.Failing {
		where = append(where, `EXISTS (SELECT 1 FROM last_reports l JOIN reports r ON r.id = l.report_id
			WHERE l.endpoint_id = e.id AND LOWER(r.result) = 'failed')`)
	}
	if q.NoReport {
		where = append(where, `NOT EXISTS (SELECT 1 FROM last_reports l WHERE l.endpoint_id = e.id)`)
	}
	if !q.SeenBefore.IsZero() {
		where, args = append(where, "e.last_seen_at < ?"), append(args, s.t(q.SeenBefore))
	}
	if q.AddrFrom.IsValid() || q.AddrTo.IsValid() {
		lo, hi, err := rangeKeys(q.AddrFrom, q.AddrTo)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", op, err)
		}
		// The range selects from the address index first (its addr_key
		// index), then the endpoints by id.
		where = append(where, `e.id IN (SELECT a.endpoint_id FROM endpoint_addresses a WHERE a.addr_key BETWEEN ? AND ?)`)
		args = append(args, lo, hi)
	}
	if q.IDs != nil {
		if len(q.IDs) == 0 {
			return []EndpointRow{}, 0, nil
		}
		// One parameter, a JSON array, however many ids (a filter may
		// keep tens of thousands, beyond both databases' parameter limits).
		list, err := json.Marshal(q.IDs)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", op, err)
		}
		in := "e.id IN (SELECT value FROM json_each(?))"
		if s.kind == dialectPostgres {
			in = "e.id IN (SELECT json_array_elements_text(?::json))"
		}
		where, args = append(where, in), append(args, string(list))
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM endpoints e WHERE `+cond), args...).Scan(&total); err != nil {
		return nil, 0, fail(op, err)
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+eCols+` FROM endpoints e WHERE `+cond+
		` ORDER BY `+order+` `+dir+`, e.id `+dir+` LIMIT ? OFFSET ?`), append(args, sqlLimit(q.Limit), max(q.Offset, 0))...)
	if err != nil {
		return nil, 0, fail(op, err)
	}
	eps, err := collect(rows, scanEndpoint)
	if err != nil {
		return nil, 0, fail(op, err)
	}
	out := make([]EndpointRow, len(eps))
	if len(eps) == 0 {
		return out, total, nil
	}
	// The page's last reports, in one query.
	ids := make([]any, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
	}
	reps, err := s.queryReports(ctx, `SELECT `+reportCols+`, NULL AS document, `+categoryCols+`
		FROM last_reports l JOIN reports r ON r.id = l.report_id
		LEFT JOIN report_categories c ON c.report_id = r.id
		WHERE l.endpoint_id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+`)
		ORDER BY r.id, c.category`, ids...)
	if err != nil {
		return nil, 0, fail(op, err)
	}
	last := make(map[string]Report, len(reps))
	for _, r := range reps {
		last[r.EndpointID] = r
	}
	for i, e := range eps {
		out[i].Endpoint, out[i].LastReport = e, last[e.ID]
	}
	return out, total, nil
}
