// Package metrics exposes orderd's Prometheus metrics: HTTP requests by
// route and status, commands by aggregate type and outcome, optimistic
// concurrency conflicts, and the Go runtime and process collectors. It is
// the only package that knows Prometheus; the API and the command handler
// report through small interfaces they declare themselves.
package metrics

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one orderd's set of metrics, registered on its own registry
// (never the global one, so several instances can live in one process, as
// in tests). It is safe for concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	commands   *prometheus.CounterVec
	cmdLatency *prometheus.HistogramVec
	conflicts  *prometheus.CounterVec
	refused    *prometheus.CounterVec
}

// New returns a Metrics with every series registered.
func New() (*Metrics, error) {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordo_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_commands_total",
			Help: "Commands handled, by aggregate type and outcome: appended, unchanged (decided no events), duplicate (already in the log), refused (domain error), failed.",
		}, []string{"aggregate", "outcome"}),
		cmdLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordo_command_duration_seconds",
			Help:    "Time to load, decide and append one command, by aggregate type.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"aggregate"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_append_conflicts_total",
			Help: "Appends refused because another writer changed the aggregate first (each is retried).",
		}, []string{"aggregate"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_admission_refused_total",
			Help: "New orders refused by admission control (429), by reason: checkout_busy (the checkout's backlog is above ORDO_CHECKOUT_MAX_BACKLOG).",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.commands, m.cmdLatency, m.conflicts, m.refused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request records one served HTTP request.
func (m *Metrics) Request(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// AdmissionRefused records one new order refused by admission control.
func (m *Metrics) AdmissionRefused(reason string) {
	m.refused.WithLabelValues(reason).Inc()
}

// Command records one handled command.
func (m *Metrics) Command(aggregate, outcome string, conflicts int, d time.Duration) {
	m.commands.WithLabelValues(aggregate, outcome).Inc()
	m.cmdLatency.WithLabelValues(aggregate).Observe(d.Seconds())
	if conflicts > 0 {
		m.conflicts.WithLabelValues(aggregate).Add(float64(conflicts))
	}
}

// Quarantine registers ordo_projection_quarantined_commits for a
// projection: open (no operator has retried or acknowledged them yet)
// and acknowledged commits set aside, counted by count at each scrape.
// count returns false when the store does not answer; the series then
// report -1.
func (m *Metrics) Quarantine(projection string, count func() (open, acknowledged int, ok bool)) error {
	for _, state := range []string{"open", "acknowledged"} {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "ordo_projection_quarantined_commits",
			Help:        "Commits a projection set aside because they cannot be applied, by state (-1: the store does not answer).",
			ConstLabels: prometheus.Labels{"projection": projection, "state": state},
		}, func() float64 {
			open, acked, ok := count()
			switch {
			case !ok:
				return -1
			case state == "open":
				return float64(open)
			}
			return float64(acked)
		})
		if err := m.reg.Register(g); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}
