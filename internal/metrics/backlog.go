package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Lane is one process-manager consumer's backlog: Pending messages of
// Stream it has not delivered yet, Unacked ones it delivered and that were
// not acknowledged yet.
type Lane struct {
	Stream, Consumer string
	Pending          uint64
	Unacked          int
}

// backlogCollector asks for the lanes at each scrape: the numbers live in
// the JetStream server, so there is nothing to keep up to date between
// scrapes.
type backlogCollector struct {
	read  func(ctx context.Context) ([]Lane, error)
	desc  *prometheus.Desc
	up    *prometheus.Desc
	limit time.Duration
}

// Backlog registers ordo_process_backlog_messages, what each of the
// process managers' consumers has not handled yet (state "pending": not
// delivered; "unacked": delivered, not acknowledged), and
// ordo_process_backlog_up (0 when the last scrape could not read it),
// asked of read at each scrape with a 2 s bound. Only an instance that
// runs the process managers registers it; instances share the consumers,
// so each one reports the same numbers.
func (m *Metrics) Backlog(read func(ctx context.Context) ([]Lane, error)) error {
	c := &backlogCollector{
		read: read,
		desc: prometheus.NewDesc("ordo_process_backlog_messages",
			"Messages a process manager's consumer has not handled yet, by stream, consumer and state (pending: not delivered yet; unacked: delivered, not acknowledged yet).",
			[]string{"stream", "consumer", "state"}, nil),
		up: prometheus.NewDesc("ordo_process_backlog_up",
			"1 if the process managers' backlog could be read at this scrape, else 0.", nil, nil),
		limit: 2 * time.Second,
	}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.up
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.limit)
	defer cancel()
	lanes, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, l := range lanes {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.Pending), l.Stream, l.Consumer, "pending")
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.Unacked), l.Stream, l.Consumer, "unacked")
	}
}
