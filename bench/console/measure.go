package main

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver

	"github.com/cascade-update/cascade/internal/server/console"
)

// page is one measured page and the bare SQL it needs.
type page struct {
	name, path string
	// baseline names the bare SQL; sql returns its statements and their
	// arguments (with "?" placeholders), run in order.
	baseline string
	sql      func(w *world, sqlite bool) []stmt
}

type stmt struct {
	query string
	args  []any
}

// registryScan reads what the classification of every endpoint reads (up
// to date, behind, failing, its first agent): every endpoint that is not
// revoked with its last report's result and categories, in one statement.
const registryScan = `SELECT e.id, e.role, e.agent_id, e.addresses, e.last_seen_at, e.installed, r.result,
	c.category, c.source, c.result, c.versions_after, c.bytes, c.full_bytes
	FROM endpoints e LEFT JOIN last_reports l ON l.endpoint_id = e.id
	LEFT JOIN reports r ON r.id = l.report_id LEFT JOIN report_categories c ON c.report_id = r.id
	WHERE e.revoked_at IS NULL`

// listPage is the bare SQL of a page of the endpoint list: the count of
// the matching endpoints, and one page of them in order with their last
// report's result and categories.
func listPage(where, order string, offset int, args ...any) []stmt {
	return []stmt{
		{`SELECT COUNT(*) FROM endpoints e WHERE ` + where, args},
		{`SELECT e.id, e.hostname, e.domain, e.role, e.agent_id, e.addresses, e.last_seen_at, e.installed,
			r.id, r.result, r.finished_at, c.category, c.source, c.result, c.versions_after, c.bytes
			FROM (SELECT * FROM endpoints e WHERE ` + where + ` ORDER BY ` + order + ` LIMIT 50 OFFSET ?) e
			LEFT JOIN last_reports l ON l.endpoint_id = e.id LEFT JOIN reports r ON r.id = l.report_id
			LEFT JOIN report_categories c ON c.report_id = r.id ORDER BY ` + order + `, c.category`,
			append(slices.Clone(args), offset)},
	}
}

const live = "e.revoked_at IS NULL"

func pages() []page {
	scan := func(*world, bool) []stmt { return []stmt{{registryScan, nil}} }
	const scanDesc = "every endpoint with its last report (one statement)"
	return []page{
		{"dashboard", "/", scanDesc, scan},
		{"endpoints, first page (by hostname)", "/endpoints", "count + one page by hostname",
			func(*world, bool) []stmt { return listPage(live, "e.hostname, e.id", 0) }},
		{"endpoints, page 200 by last seen", "/endpoints?sort=last_seen&page=200", "count + page 200 by last seen",
			func(*world, bool) []stmt { return listPage(live, "e.last_seen_at, e.id", 199*50) }},
		{"endpoints, text search", "/endpoints?q=kiosk-0420", "count + one page, the trigram index (migration 0016) then LIKE on hostname, id, agent id, addresses",
			func(_ *world, sqlite bool) []stmt {
				like := "%kiosk-0420%"
				index, key := `LOWER(e.hostname || ' ' || e.id || ' ' || COALESCE(e.agent_id, '') || ' ' || e.addresses) LIKE ?`, like
				if sqlite {
					index, key = `e.id IN (SELECT k.endpoint_id FROM endpoint_search_keys k
						WHERE k.key IN (SELECT rowid FROM endpoint_search WHERE endpoint_search MATCH ?))`, `"kiosk-0420"`
				}
				return listPage(live+` AND `+index+` AND (LOWER(e.hostname) LIKE ? ESCAPE '\' OR LOWER(e.id) LIKE ? ESCAPE '\'
					OR LOWER(COALESCE(e.agent_id, '')) LIKE ? ESCAPE '\' OR LOWER(e.addresses) LIKE ? ESCAPE '\')`,
					"e.hostname, e.id", 0, key, like, like, like, like)
			}},
		{"endpoints, failing", "/endpoints?state=failing", "count + one page, last report failed",
			func(*world, bool) []stmt {
				return listPage(live+` AND EXISTS (SELECT 1 FROM last_reports l JOIN reports r ON r.id = l.report_id
					WHERE l.endpoint_id = e.id AND LOWER(r.result) = 'failed')`, "e.hostname, e.id", 0)
			}},
		{"endpoints, not seen, by last seen", "/endpoints?state=not_seen&sort=last_seen&desc=1", "count + one page, last seen before",
			func(w *world, sqlite bool) []stmt {
				var before any = w.now.Add(-console.DefaultNotSeen).UTC()
				if sqlite {
					before = before.(time.Time).Format("2006-01-02T15:04:05.000000Z")
				}
				return listPage(live+" AND e.last_seen_at < ?", "e.last_seen_at DESC, e.id DESC", 0, before)
			}},
		{"endpoints, behind, by last seen", "/endpoints?state=behind&sort=last_seen&desc=1", scanDesc, scan},
		{"endpoints, one agent's", "/endpoints?agent=ua-042", scanDesc, scan},
	}
}

// measure builds the world on one database and measures every page.
func measure(ctx context.Context, o options, pg string) (dbFigures, int, error) {
	d := dbFigures{Database: "sqlite"}
	if pg != "" {
		d.Database = "postgres"
	}
	log.Printf("%s: loading %d endpoints", d.Database, o.Endpoints)
	start := time.Now()
	w, err := build(ctx, o.Endpoints, pg)
	if err != nil {
		return d, 0, err
	}
	defer w.close()
	d.LoadS = time.Since(start).Seconds()
	log.Printf("%s: loaded in %.1f s", d.Database, d.LoadS)
	db, err := openBare(w.dsn)
	if err != nil {
		return d, 0, err
	}
	defer db.Close()
	h := w.srv.Handler()
	if o.Profile != "" {
		f, err := os.Create(o.Profile + "." + d.Database)
		if err != nil {
			return d, 0, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return d, 0, err
		}
		defer pprof.StopCPUProfile()
	}
	for _, p := range pages() {
		if !strings.Contains(p.name, o.Only) {
			continue
		}
		if ctx.Err() != nil {
			return d, 0, ctx.Err()
		}
		pf := pageFigures{Name: p.name, Path: p.path, Baseline: p.baseline}
		times, size, err := timePage(ctx, h, w.cookie, p.path, o)
		if err != nil {
			pf.Error = err.Error()
			d.Pages = append(d.Pages, pf)
			log.Printf("%s: %s: %v", d.Database, p.name, err)
			continue
		}
		pf.Samples, pf.P50MS, pf.P99MS, pf.Bytes = len(times), quantile(times, 0.50), quantile(times, 0.99), size
		base, err := timeSQL(ctx, db, p.sql(w, pg == ""), pg != "", o)
		if err != nil {
			return d, 0, fmt.Errorf("%s: baseline: %w", p.name, err)
		}
		pf.BaseSamples, pf.BaseP50MS, pf.BaseP99MS = len(base), quantile(base, 0.50), quantile(base, 0.99)
		log.Printf("%s: %-40s p50 %7.1f ms  p99 %7.1f ms  (SQL p50 %7.1f ms, p99 %7.1f ms)  %d samples, %.1f KB",
			d.Database, p.name, pf.P50MS, pf.P99MS, pf.BaseP50MS, pf.BaseP99MS, pf.Samples, float64(size)/1000)
		d.Pages = append(d.Pages, pf)
	}
	return d, w.reports, nil
}

// openBare opens the database for the baseline's statements, outside the
// store.
func openBare(dsn string) (*sql.DB, error) {
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		return sql.Open("sqlite", path+"?_pragma=query_only(1)")
	}
	return sql.Open("pgx", dsn)
}

// counter is a ResponseWriter that keeps only the status and the size.
type counter struct {
	h    http.Header
	code int
	n    int
}

func (c *counter) Header() http.Header { return c.h }
func (c *counter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}
func (c *counter) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	c.n += len(b)
	return len(b), nil
}

// timePage requests path through h as the signed-in account as repeat
// says. It returns each request's time in ms and the page's size.
func timePage(ctx context.Context, h http.Handler, cookie, path string, o options) ([]float64, int, error) {
	one := func() (time.Duration, int, error) {
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "https://cascade.invalid"+path, nil)
		r.AddCookie(&http.Cookie{Name: console.CookieName, Value: cookie})
		c := &counter{h: http.Header{}}
		start := time.Now()
		h.ServeHTTP(c, r)
		el := time.Since(start)
		if c.code != http.StatusOK {
			return 0, 0, fmt.Errorf("GET %s answered %d", path, c.code)
		}
		return el, c.n, nil
	}
	return repeat(ctx, o, one)
}

// timeSQL runs the statements, reading every row, as timePage requests a
// page.
func timeSQL(ctx context.Context, db *sql.DB, stmts []stmt, pg bool, o options) ([]float64, error) {
	one := func() (time.Duration, int, error) {
		start := time.Now()
		for _, s := range stmts {
			q := s.query
			if pg {
				q = rebind(q)
			}
			rows, err := db.QueryContext(ctx, q, s.args...)
			if err != nil {
				return 0, 0, err
			}
			cols, _ := rows.Columns()
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					rows.Close()
					return 0, 0, err
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return 0, 0, err
			}
		}
		return time.Since(start), 0, nil
	}
	times, _, err := repeat(ctx, o, one)
	return times, err
}

// repeat runs one once unmeasured (the answer's size), then o.Requests
// times or until o.Budget has passed (at least o.Min times).
func repeat(ctx context.Context, o options, one func() (time.Duration, int, error)) ([]float64, int, error) {
	_, size, err := one()
	if err != nil {
		return nil, 0, err
	}
	var times []float64
	start := time.Now()
	for len(times) < o.Requests && (len(times) < o.Min || time.Since(start) < o.Budget) {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		el, _, err := one()
		if err != nil {
			return nil, 0, err
		}
		times = append(times, float64(el.Microseconds())/1000)
	}
	return times, size, nil
}

// quantile returns the q-quantile of xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// rebind numbers "?" placeholders for PostgreSQL.
func rebind(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
