package agent

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxClients caps the distinct client addresses remembered for the
// clients gauge, so memory stays bounded whatever connects.
const maxClients = 1 << 16

// metrics are the agent's counters, exported at /metrics and summarised
// in the status file. Each agent has its own registry. The counters of
// the request path are plain atomics that the registry reads when
// scraped: a request costs a few atomic adds, not a Prometheus
// counter's and a total's each.
type metrics struct {
	reg *prometheus.Registry

	byCode      sync.Map               // int -> *atomic.Int64: requests answered with each status code
	unavailable *prometheus.CounterVec // by reason: busy, pulling
	upstream    *prometheus.CounterVec // by repository and result
	upBytes     prometheus.Counter
	refreshes   *prometheus.CounterVec // by repository and result
	timestamp   *prometheus.GaugeVec   // served timestamp version by repository
	snapshot    *prometheus.GaugeVec   // served snapshot version by repository

	// Totals, exported and in the status file.
	nRequests, nBytes, nNotModified, nUnavailable, nUpstream atomic.Int64
	nInFlight, peak                                          atomic.Int64
	clients                                                  sync.Map // client IP -> struct{}
	nClients                                                 atomic.Int64
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	m.unavailable = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cascade_agent_unavailable_total",
		Help: "Requests answered 503 with Retry-After: busy (over max_downloads) or pulling (target being fetched upstream)."},
		[]string{"reason"})
	m.upstream = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cascade_agent_upstream_fetches_total",
		Help: "Targets fetched from upstream (refresh and pull-through), by repository and result."},
		[]string{"repository", "result"})
	m.upBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "cascade_agent_upstream_bytes_total",
		Help: "Bytes of targets fetched from upstream."})
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cascade_agent_refreshes_total",
		Help: "Refreshes of the served tree, by repository and result."}, []string{"repository", "result"})
	m.timestamp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cascade_agent_served_timestamp_version",
		Help: "Version of the timestamp.json served, by repository."}, []string{"repository"})
	m.snapshot = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cascade_agent_served_snapshot_version",
		Help: "Version of the snapshot served, by repository."}, []string{"repository"})
	m.reg.MustRegister(codeCounter{m},
		counter("cascade_agent_response_bytes_total", "Bytes of response bodies sent from the served tree.", &m.nBytes),
		counter("cascade_agent_not_modified_total", "Conditional requests answered 304 Not Modified.", &m.nNotModified),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cascade_agent_downloads_in_flight",
			Help: "Requests for the served tree being answered now."}, func() float64 { return float64(m.nInFlight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cascade_agent_clients",
			Help: "Distinct client addresses served since the agent started (at most 65536 are counted)."},
			func() float64 { return float64(m.nClients.Load()) }),
		m.unavailable, m.upstream, m.upBytes, m.refreshes, m.timestamp, m.snapshot,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// requestsDesc describes cascade_agent_requests_total.
var requestsDesc = prometheus.NewDesc("cascade_agent_requests_total",
	"Requests for the served tree, by HTTP status code.", []string{"code"}, nil)

// codeCounter exports the requests counted by status code.
type codeCounter struct{ m *metrics }

func (c codeCounter) Describe(ch chan<- *prometheus.Desc) { ch <- requestsDesc }

func (c codeCounter) Collect(ch chan<- prometheus.Metric) {
	c.m.byCode.Range(func(k, v any) bool {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(v.(*atomic.Int64).Load()),
			strconv.Itoa(k.(int)))
		return true
	})
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observe counts one answered request.
func (m *metrics) observe(code int, n int64) {
	c, ok := m.byCode.Load(code)
	if !ok {
		c, _ = m.byCode.LoadOrStore(code, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
	m.nRequests.Add(1)
	if n > 0 {
		m.nBytes.Add(n)
	}
	if code == http.StatusNotModified {
		m.nNotModified.Add(1)
	}
}

func (m *metrics) unavailableFor(reason string) {
	m.unavailable.WithLabelValues(reason).Inc()
	m.nUnavailable.Add(1)
}

func (m *metrics) fetched(kind string, n int64, err error) {
	if err != nil {
		m.upstream.WithLabelValues(kind, "error").Inc()
		return
	}
	m.upstream.WithLabelValues(kind, "ok").Inc()
	m.upBytes.Add(float64(n))
	m.nUpstream.Add(1)
}

// seen remembers a client address (up to maxClients of them).
func (m *metrics) seen(remoteAddr string) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if _, ok := m.clients.Load(host); ok || m.nClients.Load() >= maxClients {
		return
	}
	if _, loaded := m.clients.LoadOrStore(host, struct{}{}); !loaded {
		m.nClients.Add(1)
	}
}

func (m *metrics) requestCount() int64 { return m.nRequests.Load() }

// acquire takes a download slot if fewer than max are held, and keeps
// the peak held at once; release gives it back.
func (m *metrics) acquire(max int64) bool {
	n := m.nInFlight.Add(1)
	if n > max {
		m.nInFlight.Add(-1)
		return false
	}
	if n > m.peak.Load() {
		for p := m.peak.Load(); n > p && !m.peak.CompareAndSwap(p, n); p = m.peak.Load() {
		}
	}
	return true
}

func (m *metrics) release() { m.nInFlight.Add(-1) }
