package server

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cascade-update/cascade/internal/store"
)

// scrapeTimeout bounds the database reads of one scrape.
const scrapeTimeout = 10 * time.Second

// metrics are the server's Prometheus metrics (docs/server.md), served
// at /metrics to an admin token: the counts of endpoints by domain size
// are a site's inventory, not public. Each server has its own registry.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec // by route pattern and status code
	dbPing   prometheus.Histogram

	// Counted where they happen (syncer, ingester).
	syncRuns, syncFailures         atomic.Int64
	reportsStored, reportsRejected atomic.Int64
}

// newMetrics registers the server's metrics; the scrape-time ones read s.
func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cascade_server_http_requests_total",
		Help: "HTTP requests answered, by route (the pattern matched, \"other\" for none) and status code."},
		[]string{"route", "code"})
	m.dbPing = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cascade_server_database_ping_seconds",
		Help:    "Time of a one-row read of the database, made at each scrape and health check.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)})
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	m.reg.MustRegister(m.requests, m.dbPing,
		counter("cascade_server_sync_runs_total", "Syncs from the origin, scheduled and asked for.", &m.syncRuns),
		counter("cascade_server_sync_failures_total", "Syncs from the origin that failed.", &m.syncFailures),
		counter("cascade_server_reports_stored_total", "Update reports stored.", &m.reportsStored),
		counter("cascade_server_reports_failed_total", "Update reports that could not be stored.", &m.reportsRejected),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cascade_server_reports_queued",
			Help: "Update reports waiting to be stored."}, func() float64 { return float64(len(s.ingest.queue)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cascade_server_notifications_in_flight",
			Help: "Notifications whose clients are still held back for the update agents."},
			func() float64 { return float64(s.hub.InFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cascade_server_event_streams",
			Help: "Endpoints holding an event stream to this process."},
			func() float64 { return float64(s.connectedCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cascade_server_last_sync_timestamp_seconds",
			Help: "When the last sync from the origin finished (Unix time; 0 before the first)."},
			func() float64 {
				if l := s.sync.Last(); l != nil {
					return float64(l.Finished.Unix())
				}
				return 0
			}),
		&scrapeCollector{s: s, m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the metrics in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

var (
	descEndpoints = prometheus.NewDesc("cascade_server_endpoints",
		"Enrolled endpoints by role and state: connected (holding an event stream to this process), offline, revoked.",
		[]string{"role", "state"}, nil)
	descComponent = prometheus.NewDesc("cascade_server_component_version_info",
		"Each component's versions: the latest synced from the origin and the one deployed to endpoints (value 1).",
		[]string{"component", "latest", "deployed", "held"}, nil)
	descVendorTimestamp = prometheus.NewDesc("cascade_server_vendor_timestamp_version",
		"Version of the vendor timestamp.json mirrored by the last successful sync.", nil, nil)
	descUp = prometheus.NewDesc("cascade_server_database_up",
		"1 when the scrape's reads of the database succeeded, 0 when one failed.", nil, nil)
)

// scrapeCollector reads the database at each scrape: endpoints by
// state, content versions, and its latency.
type scrapeCollector struct {
	s *Server
	m *metrics
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEndpoints
	ch <- descComponent
	ch <- descVendorTimestamp
	ch <- descUp
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	up := 1.0
	if _, err := c.s.pingDatabase(ctx); err != nil {
		up = 0
	}
	if l := c.s.sync.Last(); l != nil && l.Timestamp > 0 {
		ch <- prometheus.MustNewConstMetric(descVendorTimestamp, prometheus.GaugeValue, float64(l.Timestamp))
	}
	eps, err := c.s.st.ListEndpoints(ctx, store.EndpointFilter{IncludeRevoked: true})
	if err != nil {
		up = 0
	} else {
		counts := map[[2]string]int{}
		for _, r := range []store.Role{store.RoleClient, store.RoleAgent} {
			for _, st := range []string{"connected", "offline", "revoked"} {
				counts[[2]string{string(r), st}] = 0
			}
		}
		for _, e := range eps {
			st := "offline"
			switch {
			case !e.Revoked.IsZero():
				st = "revoked"
			case c.s.hub.Connected(e.ID):
				st = "connected"
			}
			counts[[2]string{string(e.Role), st}]++
		}
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(descEndpoints, prometheus.GaugeValue, float64(n), k[0], k[1])
		}
	}
	comps, err := c.s.st.ListComponents(ctx)
	if err != nil {
		up = 0
	} else {
		for _, cs := range comps {
			ch <- prometheus.MustNewConstMetric(descComponent, prometheus.GaugeValue, 1, cs.Name, cs.Latest, cs.Deployed,
				strconv.FormatBool(cs.Held))
		}
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
}

// pingDatabase makes a one-row read of the database and records how
// long it took.
func (s *Server) pingDatabase(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	_, err := s.st.CurrentPolicy(ctx)
	d := time.Since(start)
	s.metrics.dbPing.Observe(d.Seconds())
	return d, err
}

// instrument counts the requests h answers by the route pattern the mux
// matched and the status code.
func (m *metrics) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		route := r.Pattern // set by the mux on r
		if route == "" {
			route = "other"
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	})
}

// statusRecorder remembers the status code written. It unwraps for
// http.ResponseController (flushes, deadlines of the event streams) and
// keeps io.ReaderFrom (sendfile of the served files).
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w.ResponseWriter, r)
}

func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
