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
// in the status file. Each agent has its own registry.
type metrics struct {
	reg *prometheus.Registry

	requests    *prometheus.CounterVec // by status code
	byCode      sync.Map               // int -> prometheus.Counter, resolved once per code
	bytes       prometheus.Counter
	notModified prometheus.Counter
	unavailable *prometheus.CounterVec // by reason: busy, pulling
	inFlight    prometheus.Gauge
	upstream    *prometheus.CounterVec // by repository and result
	upBytes     prometheus.Counter
	refreshes   *prometheus.CounterVec // by repository and result
	timestamp   *prometheus.GaugeVec   // served timestamp version by repository
	snapshot    *prometheus.GaugeVec   // served snapshot version by repository

	// Totals for the status file.
	nRequests, nBytes, nNotModified, nUnavailable, nUpstream atomic.Int64
	nInFlight, peak                                          atomic.Int64
	clients                                                  sync.Map // client IP -> struct{}
	nClients                                                 atomic.Int64
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cascade_agent_requests_total",
		Help: "Requests for the served tree, by HTTP status code."}, []string{"code"})
	m.bytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "cascade_agent_response_bytes_total",
		Help: "Bytes of response bodies sent from the served tree."})
	m.notModified = prometheus.NewCounter(prometheus.CounterOpts{Name: "cascade_agent_not_modified_total",
		Help: "Conditional requests answered 304 Not Modified."})
	m.unavailable = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cascade_agent_unavailable_total",
		Help: "Requests answered 503 with Retry-After: busy (over max_downloads) or pulling (target being fetched upstream)."},
		[]string{"reason"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "cascade_agent_downloads_in_flight",
		Help: "Requests for the served tree being answered now."})
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
	clients := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cascade_agent_clients",
		Help: "Distinct client addresses served since the agent started (at most 65536 are counted)."},
		func() float64 { return float64(m.nClients.Load()) })
	m.reg.MustRegister(m.requests, m.bytes, m.notModified, m.unavailable, m.inFlight, m.upstream, m.upBytes,
		m.refreshes, m.timestamp, m.snapshot, clients,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observe counts one answered request.
func (m *metrics) observe(code int, n int64) {
	c, ok := m.byCode.Load(code)
	if !ok {
		c, _ = m.byCode.LoadOrStore(code, m.requests.WithLabelValues(strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
	m.nRequests.Add(1)
	if n > 0 {
		m.bytes.Add(float64(n))
		m.nBytes.Add(n)
	}
	if code == http.StatusNotModified {
		m.notModified.Inc()
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

// started and ended bracket a download holding a slot; peak is the most
// held at once.
func (m *metrics) started() {
	m.inFlight.Inc()
	n := m.nInFlight.Add(1)
	for p := m.peak.Load(); n > p && !m.peak.CompareAndSwap(p, n); p = m.peak.Load() {
	}
}

func (m *metrics) ended() {
	m.nInFlight.Add(-1)
	m.inFlight.Dec()
}
