package metrics

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PSPSimCounts is what the payment simulator has counted since it
// started. The caller reads them from the simulator (its Stats), so that
// this package, which orderd's production build links, does not link
// the simulator.
type PSPSimCounts struct {
	Intents int64 // intents stored
	Events  int64 // webhook events raised (one per intent change)
	// Webhook delivery attempts by result: answered 2xx, refused (401,
	// 422: final), failed (any other answer or none; retried or, at the
	// last attempt, abandoned).
	Delivered, Refused, Failed int64
	Abandoned                  int64 // events given up on after every attempt
	Declined                   int64 // payments declined, by the fault or by the shopper
	// Faults injected, by kind.
	Duplicated, Reordered, Lost, DeclineFaults, Unpaid int64
}

// pspSimCollector reads the counts once per scrape.
type pspSimCollector struct {
	read                                                   func() PSPSimCounts
	intents, events, attempts, abandoned, declined, faults *prometheus.Desc
}

func newPSPSimCollector(read func() PSPSimCounts) *pspSimCollector {
	return &pspSimCollector{
		read:      read,
		intents:   prometheus.NewDesc("ordo_psp_sim_intents", "Payment intents the simulator stores.", nil, nil),
		events:    prometheus.NewDesc("ordo_psp_sim_webhook_events_total", "Webhook events the simulator raised, one per intent change (before the loss fault drops any).", nil, nil),
		attempts:  prometheus.NewDesc("ordo_psp_sim_webhook_attempts_total", "Webhook deliveries the simulator attempted, by result: delivered (2xx), refused (401 or 422, final), failed (another answer or none).", []string{"result"}, nil),
		abandoned: prometheus.NewDesc("ordo_psp_sim_webhooks_abandoned_total", "Webhook events the simulator gave up on after every attempt failed.", nil, nil),
		declined:  prometheus.NewDesc("ordo_psp_sim_payments_declined_total", "Payments the simulator declined, injected or on the pay page.", nil, nil),
		faults:    prometheus.NewDesc("ordo_psp_sim_faults_injected_total", "Faults the simulator injected, by kind: duplicate and reorder (webhooks), loss (webhooks dropped), decline (payments), abandon (intents left unpaid).", []string{"kind"}, nil),
	}
}

func (c *pspSimCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.intents, c.events, c.attempts, c.abandoned, c.declined, c.faults} {
		ch <- d
	}
}

func (c *pspSimCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.read()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(c.intents, prometheus.GaugeValue, float64(n.Intents))
	counter(c.events, n.Events)
	counter(c.attempts, n.Delivered, "delivered")
	counter(c.attempts, n.Refused, "refused")
	counter(c.attempts, n.Failed, "failed")
	counter(c.abandoned, n.Abandoned)
	counter(c.declined, n.Declined)
	counter(c.faults, n.Duplicated, "duplicate")
	counter(c.faults, n.Reordered, "reorder")
	counter(c.faults, n.Lost, "loss")
	counter(c.faults, n.DeclineFaults, "decline")
	counter(c.faults, n.Unpaid, "abandon")
}

// PSPSim registers the in-process payment simulator's series
// (ordo_psp_sim_*), read by read at each scrape.
func (m *Metrics) PSPSim(read func() PSPSimCounts) error {
	if err := m.reg.Register(newPSPSimCollector(read)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// PSPSimHandler serves the series of a simulator running on its own
// (cmd/pspsim), with the Go runtime and process collectors, on a
// registry of their own.
func PSPSimHandler(read func() PSPSimCounts) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{newPSPSimCollector(read),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}
